"""Turning a campaign's strategies into Hypothesis records.

A strategy lists hypotheses inline or points at a pack directory (the
cpp_fixture/hypotheses format: manifest.yaml plus <id>.patch files), names
existing commits (`refs`, resolved in the target repository), or searches
knobs (one hypothesis per setting). Patches are read here, once, so that
records carry their text to any node. Open and planned hypotheses of command
agents are made later: open ones below, planned ones by farm/coding_agents/planner.py.
"""
from __future__ import annotations

import collections
import pathlib

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from farm.campaign_file import knobs
from farm.campaign_file.config import (
    NAME_PATTERN,
    CampaignConfig,
    HypothesisConfig,
    StrategyConfig,
    format_validation_error,
    parse_yaml_mapping,
)
from farm.errors import ConfigError
from farm.records import Hypothesis
from worktrees import TargetRepo, WorktreeError


class ManifestEntry(BaseModel):
    """The fields of a pack entry the farm reads. The rest (expected outcomes, conflicts_with, header_only)
    is ground truth for the pack's own tests, so it is ignored here rather than forbidden."""
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=NAME_PATTERN)  # the patch is <id>.patch beside the manifest
    category: str = "uncategorised"
    description: str = ""
    predecessor: str | None = None
    rework: str | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # e.g. `combined`, read by the fixture's tests

    hypotheses: list[ManifestEntry] = Field(min_length=1)


def _read(config: CampaignConfig, path: pathlib.Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(config.problem(where, f"cannot read {path}: {error.strerror}")) from None
    except UnicodeDecodeError as error:
        raise ConfigError(config.problem(where, f"{path} is not UTF-8 text (byte {error.start}); "
                                                f"save it as UTF-8")) from None


def _load_manifest(config: CampaignConfig, strategy: StrategyConfig, manifest_path: pathlib.Path) -> Manifest:
    """The pack's manifest, checked: one `manifest: field.path: message` line per problem."""
    text = _read(config, manifest_path, f"strategies.{strategy.name}.pack.dir")
    data = parse_yaml_mapping(manifest_path, text, "a mapping with a `hypotheses` list",
                              "cpp_fixture/hypotheses/manifest.yaml")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(str(manifest_path), error)) from None
    problems = []
    seen = set()
    for index, entry in enumerate(manifest.hypotheses):
        if entry.id in seen:
            problems.append(f"{manifest_path}: hypotheses.{index}.id: {entry.id!r} is listed twice")
        seen.add(entry.id)
    ids = {entry.id for entry in manifest.hypotheses}
    for index, entry in enumerate(manifest.hypotheses):
        for field in ("predecessor", "rework"):
            named = getattr(entry, field)
            if named is not None and named not in ids:
                problems.append(f"{manifest_path}: hypotheses.{index}.{field}: no hypothesis {named!r} in this "
                                f"manifest")
    if problems:
        raise ConfigError("\n".join(problems))
    return manifest


def _pack_entries(config: CampaignConfig, strategy: StrategyConfig) -> list[HypothesisConfig]:
    pack_dir = config.resolve(strategy.pack.dir)
    manifest_path = pack_dir / "manifest.yaml"
    manifest = _load_manifest(config, strategy, manifest_path)
    entries = {entry.id: entry for entry in manifest.hypotheses}
    wanted = strategy.pack.ids or [i for i in entries if not _is_rework_target(i, entries)]
    unknown = [i for i in wanted if i not in entries]
    if unknown:
        raise ConfigError(config.problem(f"strategies.{strategy.name}.pack.ids",
                                         f"unknown id(s) {unknown}; {manifest_path} has {', '.join(entries)}"))
    index_of = {entry.id: index for index, entry in enumerate(manifest.hypotheses)}
    result = []
    for hypothesis_id in wanted:
        entry = entries[hypothesis_id]
        for used in filter(None, (hypothesis_id, entry.rework)):
            if not (pack_dir / f"{used}.patch").is_file():
                raise ConfigError(f"{manifest_path}: hypotheses.{index_of[used]}.id: no patch file {used}.patch "
                                  f"beside the manifest; add it or remove the entry")
        rework = [str(pack_dir / f"{entry.rework}.patch")] if entry.rework else []
        result.append(HypothesisConfig(id=hypothesis_id, category=entry.category, text=entry.description,
                                       patch=str(pack_dir / f"{hypothesis_id}.patch"), rework=rework,
                                       after=entry.predecessor))
    return result


def _is_rework_target(hypothesis_id: str, entries: dict[str, ManifestEntry]) -> bool:
    """Rework patches are tried by the pipeline after their guard failure, not on their own."""
    return any(entry.rework == hypothesis_id for entry in entries.values())


def _knob_records(strategy: StrategyConfig) -> list[Hypothesis]:
    return [Hypothesis(id=f"{strategy.name}-{number:03d}", strategy=strategy.name, category="knobs",
                       text=knobs.describe(setting), agent="knobs", patch="", knobs=setting,
                       source=f"knob search of {strategy.name} ({strategy.knobs.search})")
            for number, setting in enumerate(knobs.settings(strategy.knobs), start=1)]


def _refs_records(config: CampaignConfig, strategy: StrategyConfig, repo: TargetRepo | None) -> list[Hypothesis]:
    """Each commit with the parent it is measured against: its first parent (range, commits), or its merge base
    with target.base_ref (branches)."""
    where = f"strategies.{strategy.name}.refs"
    if repo is None:
        raise ConfigError(config.problem(where, "commits are resolved in the target repository, and none was given"))
    refs = strategy.refs
    found: list[tuple[str, str, str | None, str]] = []  # (id suffix, commit, parent, subject)
    try:
        if refs.range:
            lines = repo.git("log", "--reverse", "--first-parent", LOG_FORMAT, refs.range)
            if not lines:
                raise ConfigError(config.problem(f"{where}.range", f"{refs.range!r} holds no commit"))
            found += [_commit_line(line) for line in lines.splitlines()]
        found += [_commit_line(repo.git("log", "-1", LOG_FORMAT, repo.resolve(ref))) for ref in refs.commits]
        base = repo.resolve(config.target.base_ref)
        for branch in refs.branches:
            tip = repo.resolve(f"refs/heads/{branch}")
            fork = repo.git("merge-base", base, tip)
            if fork == tip:
                raise ConfigError(config.problem(f"{where}.branches", f"{branch} has no commit beyond "
                                                                      f"{config.target.base_ref}"))
            found.append((branch.replace("/", "-"), tip, fork, repo.git("log", "-1", "--format=%s", tip)))
    except WorktreeError as error:
        raise ConfigError(config.problem(where, f"{error}; give refs of the target repository")) from None
    orphans = [commit[:10] for _, commit, parent, _ in found if parent is None]
    if orphans:
        raise ConfigError(config.problem(where, f"{', '.join(orphans)} has no parent to measure it against"))
    return [Hypothesis(id=f"{strategy.name}-{suffix}", strategy=strategy.name, category=refs.category, text=subject,
                       agent="refs", patch="", commit=commit, parent=parent, source=f"commit {commit}")
            for suffix, commit, parent, subject in found]


LOG_FORMAT = "--format=%H%x09%P%x09%s"  # commit, parents, subject


def _commit_line(line: str) -> tuple[str, str, str | None, str]:
    """(id suffix, commit, first parent or None for a root commit, subject) of a LOG_FORMAT line."""
    commit, parents, subject = line.split("\t", 2)
    return commit[:10], commit, (parents.split() or [None])[0], subject


def load_hypotheses(config: CampaignConfig, repo: TargetRepo | None = None) -> list[Hypothesis]:
    """Every hypothesis of every strategy, strategies interleaved round-robin so
    that each gets workers from the start (`refs` are resolved in `repo`, the
    target repository). Raises ConfigError on a missing patch file, a duplicate
    id, an `after` that names no hypothesis, or a ref that names no commit."""
    per_strategy: list[list[Hypothesis]] = []
    for strategy in config.strategies:
        if strategy.knobs is not None:
            per_strategy.append(_knob_records(strategy))
            continue
        if strategy.refs is not None:
            per_strategy.append(_refs_records(config, strategy, repo))
            continue
        entries = list(strategy.hypotheses) + (_pack_entries(config, strategy) if strategy.pack else [])
        records = []
        for entry in entries:
            where = f"strategies.{strategy.name}.hypotheses.{entry.id}"
            patch_path = config.resolve(entry.patch) if entry.patch is not None else None
            records.append(Hypothesis(
                id=entry.id, strategy=strategy.name, category=entry.category, text=entry.text,
                agent=strategy.agent, patch=_read(config, patch_path, f"{where}.patch") if patch_path else "",
                rework=tuple(_read(config, config.resolve(p), f"{where}.rework") for p in entry.rework),
                after=entry.after, source=str(patch_path) if patch_path else f"agent of {strategy.name}"))
        records += [Hypothesis(id=f"{strategy.name}-open-{number}", strategy=strategy.name, category="open",
                               text="the agent picks its own change", agent=strategy.agent, patch="",
                               source=f"agent of {strategy.name}") for number in range(1, strategy.open + 1)]
        per_strategy.append(records)
    ordered = [h for round_ in _round_robin(per_strategy) for h in round_]
    ids = [h.id for h in ordered]
    duplicates = sorted(i for i, count in collections.Counter(ids).items() if count > 1)
    if duplicates:
        raise ConfigError(config.problem("strategies", f"hypothesis ids must be unique across strategies: "
                                                       f"{duplicates}"))
    after = {h.id: h.after for h in ordered}
    for h in ordered:
        where = f"strategies.{h.strategy}.hypotheses.{h.id}.after"
        if h.after and h.after not in after:
            raise ConfigError(config.problem(where, f"no hypothesis {h.after!r} in this campaign"))
        # A cycle (a after b, b after a, or a after a) would never start: the campaign would end with them pending.
        chain = [h.id]
        while after.get(chain[-1]) and after[chain[-1]] not in chain:
            chain.append(after[chain[-1]])
        if after.get(chain[-1]) in chain:
            cycle = " -> ".join(chain + [after[chain[-1]]])
            raise ConfigError(config.problem(where, f"the hypotheses wait on each other ({cycle}); break the "
                                                    f"cycle"))
    if not ordered and not any(s.planner for s in config.strategies):
        raise ConfigError(config.problem("strategies", "no hypotheses to run"))
    return ordered


def _round_robin(lists: list[list[Hypothesis]]):
    longest = max((len(items) for items in lists), default=0)
    for index in range(longest):
        yield [items[index] for items in lists if index < len(items)]
