"""A planner: the command that proposes a strategy's next hypotheses from its memory.

The coordinator runs it whenever a strategy with a `planner` has no hypothesis left to run (and it has not
yet proposed `max_hypotheses`), in a thread, so experiments go on meanwhile. It runs in the campaign file's
directory (not in the target repository), its output and files in <workdir>/logs/planner/<strategy>/, with:

    FARM_MEMORY_FILE     the strategy memory (farm/coding_agents/memory.py): best so far, what was tried, exhausted
    categories;
                         earlier agents' notes fenced as data (farm/coding_agents/fences.py)
    FARM_PLANNER_COUNT   N, how many hypotheses to print
    FARM_TAKEN_IDS_FILE  the hypothesis ids already used in the campaign, one per line (a new id must differ)
    FARM_REPO, FARM_TIP  the target repository and the integration tip's commit, to read (not to change)
    FARM_CAMPAIGN, FARM_STRATEGY
    FARM_STATE_DIR       a directory of its own, kept across calls: the only place it may write (it runs in the
                         sandbox of an agent, farm/node/sandbox.py: everything else is read-only)

and prints up to N lines, each one JSON object: {"id": "...", "category": "...", "text": "..."} (category
optional). Each hypothesis goes to the strategy's coding agent like a listed one. A line that is not such an
object, or has an id that is taken or not of the form NAME_PATTERN, or has no text, or comes after the N-th,
is rejected with a reason (an `events` row each); the valid lines of the same output are kept. The campaign
(scheduler/campaign.py, `planned`) decides when the planner is done.
"""
from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass, field

from farm.campaign_file.config import NAME_PATTERN, StrategyConfig
from farm.errors import PhaseError, PhaseTimeout
from farm.experiment.runner import run_command
from farm.node.sandbox import Sandbox
from farm.records import Hypothesis

FIELDS = {"id", "category", "text"}
LINE_CHARS = 200  # of a rejected line, in its event
TEXT_CHARS = 4000  # of a hypothesis text


@dataclass
class Plan:
    hypotheses: list[Hypothesis] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (the line, why)
    error: str | None = None  # the planner failed: nothing was read


def parse_plan(output: str, strategy: StrategyConfig, taken: set[str], limit: int) -> Plan:
    """The valid hypotheses of a planner's output and the rejected lines with their reasons."""
    plan = Plan()
    seen = set(taken)
    for line in (line.strip() for line in output.splitlines()):
        if not line:
            continue
        reason, hypothesis = _check(line, strategy, seen)
        if reason is None and len(plan.hypotheses) >= limit:
            reason = f"more than the {limit} hypotheses asked for"
        if reason is not None:
            plan.rejected.append((line[:LINE_CHARS], reason))
            continue
        seen.add(hypothesis.id)
        plan.hypotheses.append(hypothesis)
    return plan


def _check(line: str, strategy: StrategyConfig, taken: set[str]) -> tuple[str | None, Hypothesis | None]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg})", None
    if not isinstance(item, dict):
        return f"not a JSON object (a {type(item).__name__})", None
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        return f"unknown field(s) {unknown}; give id, category, text", None
    hypothesis_id, text, category = item.get("id"), item.get("text"), item.get("category", "uncategorised")
    if not isinstance(hypothesis_id, str) or not re.match(NAME_PATTERN, hypothesis_id):
        return f"`id` must be a name of letters, digits, _ . - (got {hypothesis_id!r})", None
    if hypothesis_id in taken:
        return f"id {hypothesis_id!r} is taken in this campaign", None
    if not isinstance(text, str) or not text.strip():
        return "`text` must be a non-empty string", None
    if not isinstance(category, str) or not category.strip():
        return "`category` must be a non-empty string", None
    return None, Hypothesis(id=hypothesis_id, strategy=strategy.name, category=category.strip(),
                            text=text.strip()[:TEXT_CHARS], agent=strategy.agent, patch="",
                            source=f"planner of {strategy.name}")


def run_planner(strategy: StrategyConfig, campaign: str, memory: str, taken: set[str], cwd: pathlib.Path,
                directory: pathlib.Path, call: int, repo: pathlib.Path, tip: str, tag: str,
                sandbox: Sandbox | None = None) -> Plan:
    """Run the strategy's planner once in `cwd` (its log, memory and ids files in `directory`), in `sandbox`
    (an agent's: it reads, it writes nothing of the farm's), and read its output."""
    try:
        return _run(strategy, campaign, memory, taken, cwd, directory, call, repo, tip, tag, sandbox)
    except Exception as error:  # noqa: BLE001 -- whatever goes wrong is this call's failure, not the campaign's
        return Plan(error=f"the planner could not run: {type(error).__name__}: {error}")


def _run(strategy: StrategyConfig, campaign: str, memory: str, taken: set[str], cwd: pathlib.Path,
         directory: pathlib.Path, call: int, repo: pathlib.Path, tip: str, tag: str, sandbox: Sandbox | None) -> Plan:
    planner = strategy.planner
    directory.mkdir(parents=True, exist_ok=True)
    memory_file = directory / f"memory-{call}.md"
    memory_file.write_text(memory)
    taken_file = directory / f"taken-{call}.txt"
    taken_file.write_text("".join(f"{i}\n" for i in sorted(taken)))
    state_dir = directory / "state"
    state_dir.mkdir(exist_ok=True)
    environment = {"FARM_MEMORY_FILE": str(memory_file), "FARM_PLANNER_COUNT": str(planner.batch),
                   "FARM_STATE_DIR": str(state_dir),
                   "FARM_TAKEN_IDS_FILE": str(taken_file), "FARM_REPO": str(repo), "FARM_TIP": tip,
                   "FARM_CAMPAIGN": campaign, "FARM_STRATEGY": strategy.name}
    try:
        result = run_command("planner", planner.command, cwd, planner.timeout, None,
                             log_path=directory / f"planner-{call}.log", env=environment, tag=tag, sandbox=sandbox)
    except PhaseTimeout as error:
        return Plan(error=str(error))
    except PhaseError as error:
        return Plan(error=f"the planner failed: {error}")
    return parse_plan(result.stdout, strategy, taken, planner.batch)
