"""Whether a loaded campaign can start: everything `farm validate` reports and `farm run` checks before Ray.

Beyond the file itself: the hypotheses and their patch files, the workdir, the target repository and its
base ref, and the worker CPU sets on this machine. Every problem found is one line.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

from farm import agents
from farm.config import CampaignConfig
from farm.errors import ConfigError, TargetError
from farm.hypotheses import load_hypotheses
from farm.records import Hypothesis
from farm.target import check_target
from scheduler.cpusets import allocate_cpu_sets  # no Ray: cpusets only reads this process's affinity


@dataclass(frozen=True)
class CheckedCampaign:
    hypotheses: list[Hypothesis]
    base_commit: str
    cpu_sets: list[tuple[int, ...]]
    agents: dict[str, str]  # strategy -> the command line of its command agent


def check_campaign(config: CampaignConfig, workdir: pathlib.Path, workers: int | None = None) -> CheckedCampaign:
    """Check what a run of `config` in `workdir` needs (`workers` overrides the config's CPU sets as `farm run
    --workers` does). Changes nothing. Raises ConfigError with one `file: field.path: message` line per problem."""
    problems: list[str] = []
    hypotheses: list[Hypothesis] = []
    base_commit = ""
    cpu_sets: list[tuple[int, ...]] = []
    try:
        hypotheses = load_hypotheses(config)
    except ConfigError as error:
        problems.append(str(error))  # already names its file (the config or a pack manifest)
    if workdir.exists() and not workdir.is_dir():
        problems.append(config.problem("workdir", f"{workdir} is not a directory; give another workdir"))
    else:
        try:
            base_commit = check_target(config, workdir)
        except TargetError as error:
            problems.append(_in_file(config, str(error)))
    try:
        cpu_sets = allocate_cpu_sets(workers or config.workers.count, config.workers.cpus_per_worker,
                                     None if workers else config.workers.cpu_sets)
    except ConfigError as error:
        problems.append(_in_file(config, str(error)))
    commands = {}
    for index, strategy in enumerate(config.strategies):
        if strategy.agent == "command":
            commands[strategy.name] = agents.command_line(strategy.command)
            missing = agents.missing_executable(strategy.command, config.resolve("."))
            if missing:
                problems.append(config.problem(f"strategies.{index}.command", f"agent of {strategy.name}: {missing}"))
    if problems:
        raise ConfigError("\n".join(problems))
    return CheckedCampaign(hypotheses, base_commit, cpu_sets, commands)


def _in_file(config: CampaignConfig, message: str) -> str:
    """A `field.path: message` error as a line of the config file's errors."""
    return f"{config.source_file}: {message}" if config.source_file else message
