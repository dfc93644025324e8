"""Whether a loaded campaign can start: everything `farm validate` reports and `farm run` checks before Ray.

Beyond the file itself: the hypotheses and their patch files, the workdir, the target repository and its
base ref, and the worker CPU sets on this machine. Every problem found is one line.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

from farm.campaign_file import knobs
from farm.campaign_file.config import CampaignConfig, is_protected
from farm.campaign_file.hypotheses import load_hypotheses
from farm.campaign_file.target import base_commit as base_of
from farm.campaign_file.target import inspect_target
from farm.coding_agents import agents, preflight
from farm.errors import ConfigError, TargetError
from farm.node import sandbox
from farm.node.cpusets import allocate_cpu_sets
from farm.records import Hypothesis
from worktrees import WorktreeError

SYMLINK_MODE = "120000 "  # git's mode of a symbolic link, as `git ls-tree` prints it


@dataclass(frozen=True)
class CheckedCampaign:
    hypotheses: list[Hypothesis]
    base_commit: str
    cpu_sets: list[tuple[int, ...]]
    agents: dict[str, str]  # "agent of <strategy>" / "planner of <strategy>" -> its command line


def check_campaign(config: CampaignConfig, workdir: pathlib.Path, workers: int | None = None) -> CheckedCampaign:
    """Check what a run of `config` in `workdir` needs (`workers` overrides the config's CPU sets as `farm run
    --workers` does). Changes nothing. Raises ConfigError with one `file: field.path: message` line per problem."""
    problems: list[str] = []
    hypotheses: list[Hypothesis] = []
    base_commit = ""
    cpu_sets: list[tuple[int, ...]] = []
    target_problems: list[str] = []  # reported after the hypotheses' problems, in the file's order
    if workdir.exists() and not workdir.is_dir():
        target_problems.append(config.problem("workdir", f"{workdir} is not a directory; give another workdir"))
    else:
        try:
            with inspect_target(config, workdir) as repo:
                base_commit = base_of(config, repo)
                hypotheses = _hypotheses(config, repo, problems)
                problems += _knob_files(config, repo, base_commit)
        except TargetError as error:
            target_problems.append(_in_file(config, str(error)))
    if target_problems:  # the other strategies can still be checked
        hypotheses = _hypotheses(config, None, problems, skip_refs=True)
    problems += target_problems
    try:
        cpu_sets = allocate_cpu_sets(workers or config.workers.count, config.workers.cpus_per_worker,
                                     None if workers else config.workers.cpu_sets)
    except ConfigError as error:
        problems.append(_in_file(config, str(error)))
    commands = {}
    for index, strategy in enumerate(config.strategies):
        if strategy.agent == "command":
            commands[f"agent of {strategy.name}"] = agents.command_line(strategy.command)
            missing = agents.missing_executable(strategy.command, config.resolve("."))
            not_ready = missing or preflight.login_problem(strategy.command)
            if not_ready:
                problems.append(config.problem(f"strategies.{index}.command", f"agent of {strategy.name}: {not_ready}"))
        if strategy.planner is not None:
            commands[f"planner of {strategy.name}"] = strategy.planner.command
            missing = agents.missing_program(strategy.planner.command, config.resolve("."))
            if missing:
                problems.append(config.problem(f"strategies.{index}.planner.command",
                                               f"planner of {strategy.name}: {missing}"))
    problems += _sandbox(config)
    problems += _instruction_counter(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return CheckedCampaign(hypotheses, base_commit, cpu_sets, commands)


def _hypotheses(config: CampaignConfig, repo, problems: list[str], skip_refs: bool = False) -> list[Hypothesis]:
    """The campaign's hypotheses (`refs` resolved in `repo`); a problem is added to `problems`. Without a
    repository (`skip_refs`) only the other strategies are checked."""
    if skip_refs:
        config = config.model_copy(update={"strategies": [s for s in config.strategies if s.refs is None]})
        if not config.strategies:
            return []
    try:
        return load_hypotheses(config, repo)
    except ConfigError as error:
        problems.append(str(error))  # already names its file (the config or a pack manifest)
        return []


def _sandbox(config: CampaignConfig) -> list[str]:
    """Agents run only in bubblewrap, unless the campaign says `sandbox: none` (unsafe) itself."""
    runs_agents = any(s.agent == "command" or s.planner is not None for s in config.strategies)
    problem = sandbox.bwrap_problem() if runs_agents and config.sandbox.mode == "bwrap" else None
    return [config.problem("sandbox", f"agents run in a sandbox, but {problem}")] if problem else []


def _instruction_counter(config: CampaignConfig) -> list[str]:
    """measurement.channels with instructions needs a counter on this node (perf or cachegrind)."""
    if "instructions" not in config.measurement.channels:
        return []
    from farm.experiment import instruction_counter  # here: runs a probe, only for a campaign that counts

    counter, found = instruction_counter.find_counter()
    return [] if counter else [config.problem("measurement.channels", f"instructions are counted, but {found}")]


def _knob_files(config: CampaignConfig, repo, base_commit: str) -> list[str]:
    """A file knob whose file or pattern is not in the base commit would crash every experiment; an env file
    that git ignores or that is protected would lose (or refuse) every setting written to it."""
    problems = []
    env_file = config.phases.env_file
    if any(k.write.file is None for s in config.strategies for k in (s.knobs.params if s.knobs else [])):
        if is_protected(env_file, config.protected_paths):
            problems.append(config.problem("phases.env_file", f"{env_file} is a protected path; knobs write it"))
        try:
            repo.git("check-ignore", "-q", env_file)
            problems.append(config.problem("phases.env_file", f"git ignores {env_file}, so a setting would not "
                                                              f"be committed; give a path git tracks"))
        except WorktreeError:
            pass  # not ignored
    for index, strategy in enumerate(config.strategies):
        for number, knob in enumerate(strategy.knobs.params if strategy.knobs else []):
            if knob.write.file is None:
                continue
            where = f"strategies.{index}.knobs.params.{number}.write"
            try:
                text = repo.git("show", f"{base_commit}:{knob.write.file}")
            except WorktreeError:
                problems.append(config.problem(where, f"no file {knob.write.file} in {config.target.base_ref}"))
                continue
            if repo.git("ls-tree", base_commit, "--", knob.write.file).startswith(SYMLINK_MODE):
                # A link may lead out of the checkout: the writer would refuse it (farm/campaign_file/knobs.py), as a
                # crash of
                # every experiment of the strategy.
                problems.append(config.problem(where, f"{knob.write.file} is a symbolic link in "
                                                      f"{config.target.base_ref}; give the path of the file itself"))
                continue
            if knobs.value_place(knob.write.pattern, text) is None:
                problems.append(config.problem(where, f"the pattern matches nothing in {knob.write.file} of "
                                                      f"{config.target.base_ref}"))
    return problems


def _in_file(config: CampaignConfig, message: str) -> str:
    """A `field.path: message` error as a line of the config file's errors."""
    return f"{config.source_file}: {message}" if config.source_file else message
