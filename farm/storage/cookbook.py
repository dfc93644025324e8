"""Post-mortem queries: named SQL over a store, run with `farm query --recipe NAME` (and listed by `farm
query --recipes`). Each takes `$campaign` and, where it says so, `$experiment` or `$benchmark`; the tables
and columns are described in farm/storage/schema.sql. tests/farm/test_cookbook.py runs every recipe against the store
of a real campaign."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    question: str
    sql: str
    params: tuple[str, ...] = ("campaign",)


RECIPES: dict[str, Recipe] = {
    "samples": Recipe(
        "every sample of a benchmark in an experiment, by arm and block",
        """SELECT arm, block, value, unit, cpus, started_at FROM samples
           WHERE experiment_id = $experiment AND benchmark = $benchmark ORDER BY block, arm""",
        ("experiment", "benchmark")),
    "why-discarded": Recipe(
        "why each experiment that did not land was not kept: its reason and every benchmark's verdict",
        """SELECT e.id AS experiment, e.hypothesis_id AS hypothesis, e.kind, e.status, d.benchmark, d.verdict,
                  round(d.ratio, 4) AS ratio, round(d.ci_low, 4) AS ci_low, round(d.ci_high, 4) AS ci_high,
                  round(d.effect_floor, 4) AS floor, d.n_blocks AS blocks, e.reason
           FROM experiments e LEFT JOIN decisions d ON d.experiment_id = e.id
           WHERE e.campaign = $campaign AND e.kind IN ('screen', 'merge') AND e.status <> 'keep'
           ORDER BY e.id, d.benchmark"""),
    "noise-floor": Recipe(
        "the noise floor per worker over time: each measured experiment's effect floor per benchmark",
        """SELECT e.worker, e.started_at, e.id AS experiment, e.kind, d.benchmark, round(d.effect_floor, 4) AS floor
           FROM decisions d JOIN experiments e ON e.id = d.experiment_id
           WHERE e.campaign = $campaign ORDER BY e.worker, e.started_at, d.benchmark"""),
    "landed": Recipe(
        "what landed, in order, on which branch: screening against re-measured effect",
        """SELECT m.lineage, m.position, e.hypothesis_id AS hypothesis, round(m.screening_ratio, 4) AS screening,
                  round(m.remeasured_ratio, 4) AS remeasured, m.remeasure_experiment_id AS remeasure,
                  m.integrated_commit AS commit
           FROM merges m JOIN experiments e ON e.id = m.experiment_id
           WHERE m.campaign = $campaign AND m.landed ORDER BY m.merged_at"""),
    "race": Recipe(
        "the strategy race: who won and by how much (landed_ratio < 1 is faster), and why each ended as it did",
        """SELECT strategy, status, screens, kept, landed, round(landed_ratio, 4) AS landed_ratio, reason
           FROM race_results WHERE campaign = $campaign ORDER BY status <> 'winner', landed_ratio, strategy"""),
    "artifacts": Recipe(
        "the measurement artifacts the farm flagged (canaries, control charts, suspect baselines, stale builds)",
        """SELECT created_at, kind, experiment_id AS experiment, benchmark, reason FROM artifacts
           WHERE campaign = $campaign ORDER BY created_at"""),
    "per-hour": Recipe(
        "experiments per hour per worker, and how they ended",
        """SELECT worker, date_trunc('hour', started_at) AS hour, count(*) AS experiments,
                  count(*) FILTER (status = 'keep') AS kept, count(*) FILTER (status = 'discard') AS discarded,
                  count(*) FILTER (status NOT IN ('keep', 'discard')) AS other
           FROM experiments WHERE campaign = $campaign GROUP BY ALL ORDER BY worker, hour"""),
    "time": Recipe(
        "where each worker's time went: agent (with checkout and commit), build, guard, wait (for the node's "
        "measurement lock), measure, count (instruction counts), idle",
        """SELECT worker, phase, round(sum(epoch(finished_at - started_at)), 1) AS seconds,
                  round(100 * sum(epoch(finished_at - started_at))
                        / sum(sum(epoch(finished_at - started_at))) OVER (PARTITION BY worker), 1) AS percent
           FROM phases WHERE campaign = $campaign GROUP BY worker, phase ORDER BY worker, seconds DESC"""),
    "spend": Recipe(
        "what each strategy's agents cost (as their CLIs reported it), and what it bought: runs, money, tokens, "
        "screens kept",
        """SELECT r.strategy, count(*) AS runs, count(*) FILTER (r.outcome <> 'ok') AS failed,
                  round(sum(r.cost_usd), 4) AS cost_usd, sum(r.input_tokens) AS input_tokens,
                  sum(r.output_tokens) AS output_tokens, round(sum(r.seconds) / 60, 1) AS minutes,
                  count(DISTINCT r.experiment_id) FILTER (e.status = 'keep') AS kept
           FROM agent_runs r JOIN experiments e ON e.id = r.experiment_id
           WHERE r.campaign = $campaign GROUP BY r.strategy ORDER BY r.strategy"""),
}


def bound(sql: str, values: dict) -> dict:
    """The values a query uses ($name in its text): DuckDB refuses values a query does not take."""
    return {name: value for name, value in values.items() if f"${name}" in sql}
