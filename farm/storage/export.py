"""Exports of a store for other tools: every table as Parquet (DuckDB's EXPORT DATABASE), and a campaign's
screens in the two forms one-terminal autoresearch loops write: karpathy/autoresearch's `results.tsv` and
pi-autoresearch's `autoresearch.jsonl`.

Both loop formats have one metric per experiment where the farm has several benchmarks: the metric is the
experiment's effect, the geometric mean over benchmarks of candidate/parent (< 1 is better, 0 when nothing
was measured); the per-benchmark ratios go to the jsonl's `metrics`.
"""
from __future__ import annotations

import json
import pathlib

import duckdb

# The farm's outcomes in the loops' vocabulary: kept, measured and not kept, or failed before a measurement.
LOOP_STATUS = {"keep": "keep", "discard": "discard", "guard_fail": "checks_failed"}
SCREENS_SQL = """
SELECT e.id, coalesce(e."commit", e.parent_commit) AS commit, e.effect, e.status, e.reason, e.blocks,
       e.started_at, h.text, e.hypothesis_id,
       (SELECT median(run.peak_rss) FROM (SELECT DISTINCT block, peak_rss FROM samples
                                          WHERE experiment_id = e.id AND arm = 'cand') run) AS peak_rss
FROM experiments e JOIN hypotheses h ON h.campaign = e.campaign AND h.id = e.hypothesis_id
WHERE e.campaign = ? AND e.kind = 'screen' AND e.status NOT IN ('running', 'lost', 'invalidated')
ORDER BY e.started_at, e.id
"""


def export_parquet(con: duckdb.DuckDBPyConnection, directory: pathlib.Path) -> list[pathlib.Path]:
    """Every table of the store as <table>.parquet (with DuckDB's schema.sql and load.sql to re-import)."""
    quoted = str(directory).replace("'", "''")
    con.execute(f"EXPORT DATABASE '{quoted}' (FORMAT parquet)")
    return sorted(directory.glob("*.parquet"))


def _screens(con: duckdb.DuckDBPyConnection, campaign: str) -> list[tuple]:
    return con.execute(SCREENS_SQL, [campaign]).fetchall()


def _description(hypothesis: str, text: str, status: str, reason: str | None) -> str:
    """One line (tabs and newlines would break the TSV): the hypothesis, and the farm's outcome if it is not
    one of the loop's own."""
    described = f"{hypothesis}: {text}" if text else hypothesis
    if status not in LOOP_STATUS or status == "guard_fail":
        described += f" [{status}: {reason or ''}]"
    return " ".join(described.split())


def export_results_tsv(con: duckdb.DuckDBPyConnection, campaign: str, path: pathlib.Path) -> int:
    """karpathy/autoresearch's results.tsv: commit (7 characters), metric, memory_gb, status (keep, discard or
    crash), description. memory_gb: the candidate's median peak resident memory over its benchmark runs (GB,
    10^9 bytes, as the loop writes its peak VRAM); 0.0 when it ran none."""
    rows = _screens(con, campaign)
    lines = ["commit\teffect\tmemory_gb\tstatus\tdescription"]
    for _, commit, effect, status, reason, _, _, text, hypothesis, peak_rss in rows:
        loop_status = status if status in ("keep", "discard") else "crash"
        lines.append(f"{commit[:7]}\t{effect or 0.0:.6f}\t{(peak_rss or 0) / 1e9:.3f}\t{loop_status}\t"
                     f"{_description(hypothesis, text, status, reason)}")
    path.write_text("\n".join(lines) + "\n")
    return len(rows)


def export_autoresearch_jsonl(con: duckdb.DuckDBPyConnection, campaign: str, path: pathlib.Path) -> int:
    """pi-autoresearch's autoresearch.jsonl: a config line, then one line per experiment (run, commit, metric,
    metrics, status, description, timestamp in ms, segment, confidence, asi)."""
    ratios: dict[str, dict[str, float]] = {}
    for experiment, benchmark, ratio in con.execute(
            "SELECT d.experiment_id, d.benchmark, d.ratio FROM decisions d JOIN experiments e "
            "ON e.id = d.experiment_id WHERE e.campaign = ? AND e.kind = 'screen' "
            "AND NOT ends_with(d.benchmark, '.instructions')", [campaign]).fetchall():
        if ratio is not None:
            ratios.setdefault(experiment, {})[benchmark] = ratio
    lines = [json.dumps({"type": "config", "name": campaign, "metricName": "effect", "metricUnit": "x",
                         "bestDirection": "lower"})]
    rows = _screens(con, campaign)
    for run, (experiment, commit, effect, status, reason, blocks, started, text, hypothesis, _) in enumerate(rows):
        lines.append(json.dumps({
            "run": run, "commit": commit[:7], "metric": effect or 0.0, "metrics": ratios.get(experiment, {}),
            "status": LOOP_STATUS.get(status, "crash"), "description": _description(hypothesis, text, status, reason),
            "timestamp": int(started.timestamp() * 1000), "segment": 0, "confidence": None,
            "asi": {"experiment": experiment, "farm_status": status, "reason": reason, "blocks": blocks}}))
    path.write_text("\n".join(lines) + "\n")
    return len(rows)
