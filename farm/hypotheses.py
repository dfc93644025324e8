"""Turning a campaign's strategies into Hypothesis records.

A strategy lists hypotheses inline or points at a pack directory (the
cpp_fixture/hypotheses format: manifest.yaml plus <id>.patch files). Patches
are read here, once, so that records carry their text to any node.
"""
from __future__ import annotations

import pathlib

import yaml

from farm.config import CampaignConfig, HypothesisConfig, StrategyConfig
from farm.errors import ConfigError
from farm.records import Hypothesis


def _read(path: pathlib.Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {path}: {error.strerror}") from None


def _pack_entries(config: CampaignConfig, strategy: StrategyConfig) -> list[HypothesisConfig]:
    pack_dir = config.resolve(strategy.pack.dir)
    manifest_path = pack_dir / "manifest.yaml"
    manifest = yaml.safe_load(_read(manifest_path, f"strategies.{strategy.name}.pack"))
    entries = {entry["id"]: entry for entry in manifest["hypotheses"]}
    wanted = strategy.pack.ids or [i for i, e in entries.items() if not _is_rework_target(i, entries)]
    unknown = [i for i in wanted if i not in entries]
    if unknown:
        raise ConfigError(f"strategies.{strategy.name}.pack.ids: unknown id(s) {unknown}; "
                          f"{manifest_path} has {', '.join(entries)}")
    result = []
    for hypothesis_id in wanted:
        entry = entries[hypothesis_id]
        rework = [str(pack_dir / f"{entry['rework']}.patch")] if entry.get("rework") else []
        result.append(HypothesisConfig(id=hypothesis_id, category=entry.get("category", "uncategorised"),
                                       text=entry.get("description", ""), patch=str(pack_dir / f"{hypothesis_id}.patch"),
                                       rework=rework, after=entry.get("predecessor")))
    return result


def _is_rework_target(hypothesis_id: str, entries: dict) -> bool:
    """Rework patches are tried by the pipeline after their guard failure, not on their own."""
    return any(entry.get("rework") == hypothesis_id for entry in entries.values())


def load_hypotheses(config: CampaignConfig) -> list[Hypothesis]:
    """Every hypothesis of every strategy, strategies interleaved round-robin so
    that each gets workers from the start. Raises ConfigError on a missing patch
    file, a duplicate id or an `after` that names no hypothesis."""
    per_strategy: list[list[Hypothesis]] = []
    for strategy in config.strategies:
        entries = list(strategy.hypotheses) + (_pack_entries(config, strategy) if strategy.pack else [])
        records = []
        for entry in entries:
            where = f"strategies.{strategy.name}.hypotheses.{entry.id}"
            patch_path = config.resolve(entry.patch)
            records.append(Hypothesis(
                id=entry.id, strategy=strategy.name, category=entry.category, text=entry.text,
                agent=strategy.agent, patch=_read(patch_path, f"{where}.patch"),
                rework=tuple(_read(config.resolve(p), f"{where}.rework") for p in entry.rework),
                after=entry.after, source=str(patch_path)))
        per_strategy.append(records)
    ordered = [h for round_ in _round_robin(per_strategy) for h in round_]
    ids = [h.id for h in ordered]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"hypothesis ids must be unique across strategies: {duplicates}")
    for h in ordered:
        if h.after and h.after not in ids:
            raise ConfigError(f"strategies.{h.strategy}.hypotheses.{h.id}.after: no hypothesis {h.after!r} "
                              f"in this campaign")
    if not ordered:
        raise ConfigError("strategies: no hypotheses to run")
    return ordered


def _round_robin(lists: list[list[Hypothesis]]):
    longest = max((len(items) for items in lists), default=0)
    for index in range(longest):
        yield [items[index] for items in lists if index < len(items)]
