"""The saved campaign state's shape: what Campaign.to_dict writes to the store each turn and --resume reads back.

A state read from the store is validated against these models before anything of it is restored: a state that
a crash, an older farm or a hand edit left malformed is refused with one line that names where (`--resume:
the saved campaign state is malformed at lineages.integrated.tip: ...`), never a traceback half-way through
the restore. Saving does not validate: the coordinator writes the state every turn, and the dict it builds is
these models' shape by construction (tests/scheduler/test_campaign_state.py checks that a saved state passes).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeptState(_State):
    experiment_id: str
    hypothesis_id: str
    effect: float | None
    commit: str
    parent_commit: str


class MergeQueueState(_State):
    waiting: list[str]
    in_flight: str | None
    kept: list[KeptState]


class LineageState(_State):
    tip: str
    landed: list[KeptState]
    merges: MergeQueueState


class AssignmentState(_State):
    experiment_id: str
    kind: str
    hypothesis: str
    parent_commit: str
    branch: str
    screened_experiment: str | None
    pick_base: str | None
    pick_tip: str | None
    retry_of: str | None
    lineage: str


class HypothesisQueueState(_State):
    all: list[str]
    digests: dict[str, str]
    pending: list[str]
    again: list[str]
    settled: list[str]
    started: int
    planned: list[dict[str, Any]]  # Hypothesis records, as dataclasses.asdict wrote them


class RaceState(_State):
    rungs_passed: int
    ended: bool
    strategies: dict[str, dict[str, Any]]


class CampaignState(_State):
    version: int
    counter: int
    base: str
    lineages: dict[str, LineageState]
    race: RaceState | None
    confirmation: str | None
    statuses: dict[str, int]
    categories: dict[str, list[int]]
    hypotheses: HypothesisQueueState
    agent_failures: dict[str, list[Any]]
    started_at: float
    screens_since_keep: int
    stopped: str | None
    spend: dict[str, float]
    planners: dict[str, dict[str, Any]]
    monitor: dict[str, Any]
    in_flight: dict[str, tuple[str, AssignmentState]]
    retry: list[AssignmentState]
    reserved: dict[str, AssignmentState]


def check_state(data: dict) -> None:
    """ValueError (one line: where, and what is wrong) unless `data` has the saved state's shape."""
    try:
        CampaignState.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ValueError(f"the saved campaign state is malformed at {where}: {first['msg']}{more}; start over "
                         f"with --fresh") from None
