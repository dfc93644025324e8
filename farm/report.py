"""End-of-campaign reports: the final confirmation, the summary table and progress.png, from the store."""
from __future__ import annotations

import json
import math
import pathlib

import duckdb
import numpy as np
from scipy import stats as scipy_stats

from stats.decision import ratio_interval

STATUS_STYLE = {  # status -> (marker, colour) in progress.png
    "keep": ("o", "tab:green"), "discard": ("x", "tab:red"), "guard_fail": ("s", "tab:orange"),
    "crash": ("X", "black"), "timeout": ("v", "tab:purple"), "tampered": ("D", "tab:brown"),
}


def format_table(columns: list[str], rows: list[tuple], max_width: int = 60) -> str:
    """A plain text table; long cells are cut to max_width."""
    def cell(value) -> str:
        if isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = "" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"
    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, body)])


SUMMARY_SQL = """
SELECT e.id AS experiment, e.hypothesis_id AS hypothesis, e.kind, e.worker, e.status,
       round(e.effect, 3) AS effect, e.blocks, m.position AS landed, e.reason
FROM experiments e
LEFT JOIN merges m ON m.remeasure_experiment_id = e.id AND m.landed
WHERE e.campaign = ?
ORDER BY e.id
"""


def summary_table(con: duckdb.DuckDBPyConnection, campaign: str) -> str:
    cursor = con.execute(SUMMARY_SQL, [campaign])
    return format_table([d[0] for d in cursor.description], cursor.fetchall())


def confirmation_summary(con: duckdb.DuckDBPyConnection, campaign: str) -> str | None:
    """The campaign's headline: the final tip against the base (per benchmark, and overall as the geometric
    mean over benchmarks per block, each with its interval), next to the product of the landed re-measured
    ratios (its interval combines theirs as independent normal log errors). None before a confirmation."""
    row = con.execute("SELECT id, blocks FROM experiments WHERE campaign = ? AND kind = 'confirm' AND status IN "
                      "('keep', 'discard') ORDER BY started_at DESC LIMIT 1", [campaign]).fetchone()
    if row is None:
        return None
    experiment, blocks = row
    config = _stored_config(con, campaign)
    alpha = config.get("acceptance", {}).get("alpha", 0.05)
    decisions = con.execute("SELECT benchmark, ratio, ci_low, ci_high FROM decisions WHERE experiment_id = ? "
                            "ORDER BY benchmark", [experiment]).fetchall()
    shown = "; ".join(f"{name} {ratio:.3f}x [{low:.3f}, {high:.3f}]" for name, ratio, low, high in decisions)
    lines = [f"final confirmation ({experiment}: the final tip against the base, {blocks} blocks): "
             f"overall {_overall(con, experiment, config, [d[0] for d in decisions], alpha)}; {shown}"]
    landed = con.execute("""SELECT d.benchmark, d.ratio, d.ci_low, d.ci_high FROM merges m
                            JOIN decisions d ON d.experiment_id = m.remeasure_experiment_id
                            WHERE m.campaign = ? AND m.landed ORDER BY d.benchmark""", [campaign]).fetchall()
    z = scipy_stats.norm.ppf(1 - alpha / 2)
    products = []
    for name in sorted({r[0] for r in landed}):
        logs = [(math.log(r), (math.log(high) - math.log(low)) / (2 * z)) for b, r, low, high in landed if b == name]
        centre, se = sum(c for c, _ in logs), math.sqrt(sum(e * e for _, e in logs))
        products.append(f"{name} {math.exp(centre):.3f}x [{math.exp(centre - z * se):.3f}, "
                        f"{math.exp(centre + z * se):.3f}]")
    if products:
        lines.append(f"product of the landed re-measured ratios: {'; '.join(products)}")
    return "\n".join(lines)


def _stored_config(con: duckdb.DuckDBPyConnection, campaign: str) -> dict:
    """The campaign file as the store recorded it at the start."""
    return json.loads(con.execute("SELECT config_json FROM campaigns WHERE id = ?", [campaign]).fetchone()[0])


def _overall(con, experiment: str, config: dict, benchmarks: list[str], alpha: float) -> str:
    """The geometric mean over benchmarks (each in its own direction) of every block, ref against cand."""
    higher = {name for name, b in config.get("benchmarks", {}).items() if b.get("direction") == "higher"}
    rows = con.execute("SELECT block, arm, benchmark, median(value) FROM samples WHERE experiment_id = ? "
                       "GROUP BY ALL", [experiment]).fetchall()
    per_block: dict[int, dict[str, list[float]]] = {}
    for block, arm, name, value in rows:
        if name in benchmarks and value > 0:
            per_block.setdefault(block, {}).setdefault(arm, []).append(-math.log(value) if name in higher
                                                                      else math.log(value))
    pairs = [(np.mean(arms["ref"]), np.mean(arms["cand"])) for arms in per_block.values()
             if len(arms.get("ref", [])) == len(arms.get("cand", [])) == len(benchmarks)]
    try:
        ratio, low, high = ratio_interval(np.exp([r for r, _ in pairs]), np.exp([c for _, c in pairs]), alpha)
    except ValueError as error:
        return f"not computed ({error})"
    return f"{ratio:.3f}x [{low:.3f}, {high:.3f}]"


def acceptance_summary(con: duckdb.DuckDBPyConnection, campaign: str) -> str:
    """Blocks spent, canaries, artifacts, and the expected number of false keeps: every measured experiment
    whose change is not a real win beyond its floors is kept with probability at most alpha, so alpha x the
    measured experiments bounds the expected false keeps of the campaign."""
    alpha = _stored_config(con, campaign).get("acceptance", {}).get("alpha", 0.05)
    measured, keeps, blocks = con.execute(
        "SELECT count(*), count(*) FILTER (status = 'keep'), coalesce(sum(blocks), 0) FROM experiments "
        "WHERE campaign = ? AND kind IN ('screen', 'merge') AND status IN ('keep', 'discard', 'invalidated')",
        [campaign]).fetchone()
    canaries, false_positives, aa_blocks = con.execute(
        "SELECT count(*), count(*) FILTER (status = 'aa_false_positive'), coalesce(sum(blocks), 0) "
        "FROM experiments WHERE campaign = ? AND kind = 'aa'", [campaign]).fetchone()
    artifacts = con.execute("SELECT kind, count(*) FROM artifacts WHERE campaign = ? GROUP BY 1 ORDER BY 1",
                            [campaign]).fetchall()
    flagged = ", ".join(f"{n} {kind}" for kind, n in artifacts) or "none"
    return (f"acceptance: {measured} measured experiments, {blocks} blocks ({blocks / max(measured, 1):.1f} each), "
            f"{keeps} kept; expected false keeps at most {alpha * measured:.2f} (alpha {alpha} x {measured}); "
            f"A/A canaries {canaries} ({aa_blocks} blocks, {false_positives} false positives); artifacts: {flagged}")


def write_progress_png(con: duckdb.DuckDBPyConnection, campaign: str, path: pathlib.Path) -> pathlib.Path | None:
    """Per benchmark: the candidate's median value in each experiment (marked by
    status) and the parent's median (the line), in experiment order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = con.execute("""
        SELECT e.id, e.status, s.benchmark, s.arm, median(s.value) AS value, any_value(s.unit) AS unit
        FROM samples s JOIN experiments e ON e.id = s.experiment_id
        WHERE e.campaign = ? GROUP BY ALL ORDER BY e.id""", [campaign]).fetchall()
    if not rows:
        return None
    experiments = sorted({r[0] for r in rows})
    position = {exp: i for i, exp in enumerate(experiments)}
    benchmarks = sorted({r[2] for r in rows})
    fig, axes = plt.subplots(len(benchmarks), 1, figsize=(max(6.0, 0.5 * len(experiments) + 3), 2.2 * len(benchmarks)),
                             sharex=True, squeeze=False)
    for ax, benchmark in zip(axes[:, 0], benchmarks):
        mine = [r for r in rows if r[2] == benchmark]
        ref = sorted((position[r[0]], r[4]) for r in mine if r[3] == "ref")
        ax.plot([p for p, _ in ref], [v for _, v in ref], color="grey", lw=1, label="parent")
        for status, (marker, colour) in STATUS_STYLE.items():
            points = [(position[r[0]], r[4]) for r in mine if r[3] == "cand" and r[1] == status]
            if points:
                ax.scatter(*zip(*points), marker=marker, color=colour, label=status, zorder=3)
        ax.set_ylabel(f"{benchmark}\n({mine[0][5]})")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize="small", ncols=4)
    axes[0, 0].set_title(f"{campaign}: candidate (marker) vs parent (line)", fontsize="medium")
    axes[-1, 0].set_xticks(range(len(experiments)), [e.rsplit("-", 1)[-1] for e in experiments], rotation=90)
    axes[-1, 0].set_xlabel("experiment")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
