"""End-of-campaign reports: the final confirmation, the summary table and progress.png, from the store."""
from __future__ import annotations

import base64
import html
import json
import math
import pathlib
import shutil
import tempfile

import duckdb
import numpy as np
from scipy import stats as scipy_stats

from farm.errors import FarmError
from farm.records import INSTRUCTIONS
from farm.storage.cookbook import RECIPES, bound
from stats.decision import ratio_interval

STATUS_STYLE = {  # status -> (marker, colour) in progress.png
    "keep": ("o", "tab:green"), "discard": ("x", "tab:red"), "guard_fail": ("s", "tab:orange"),
    "crash": ("X", "black"), "timeout": ("v", "tab:purple"), "tampered": ("D", "tab:brown"),
}


def print_result(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None, fmt: str = "table",
                 title: str | None = None) -> None:
    """A query's result on standard output: DuckDB's own table (long cells wrapped to the terminal), or CSV or
    JSON written by DuckDB's COPY. `params` fill the query's $names (only those it uses)."""
    params = bound(sql, params or {})
    try:
        if fmt == "table":
            if title:
                print(title)
            width = shutil.get_terminal_size((160, 24)).columns
            con.cursor().sql(sql, params=params).show(max_width=width, max_rows=100_000)
            return
        with tempfile.TemporaryDirectory() as directory:
            out = pathlib.Path(directory) / f"result.{fmt}"
            options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT json, ARRAY true"
            con.cursor().execute(f"COPY ({sql}) TO '{out}' ({options})", params)
            print(out.read_text(), end="")
    except duckdb.Error as error:
        raise FarmError(f"query failed: {str(error).splitlines()[0]}") from None


# A merges row `m` on the integration branch's history: landed there, or (race mode) on the winning lineage,
# which became the integration branch at the end of the race.
ON_INTEGRATION = """coalesce(m.lineage, 'integrated') IN ('integrated', coalesce(
    (SELECT any_value(r.strategy) FROM race_results r WHERE r.campaign = m.campaign AND r.status = 'winner'),
    'integrated'))"""

SUMMARY_SQL = """
SELECT e.id AS experiment, e.hypothesis_id AS hypothesis, e.kind, e.worker, e.status,
       round(e.effect, 3) AS effect, e.blocks, m.position AS landed, e.reason
FROM experiments e
LEFT JOIN merges m ON m.remeasure_experiment_id = e.id AND m.landed
WHERE e.campaign = $campaign
ORDER BY e.id
"""


def final_summary(con: duckdb.DuckDBPyConnection, campaign: str) -> None:
    """What `farm run` prints at the end, and `farm status` per campaign: the final confirmation first, the
    race, every experiment, the acceptance figures."""
    headline = confirmation_summary(con, campaign)
    if headline:
        print(headline + "\n")
    if con.execute("SELECT count(*) FROM allocations WHERE campaign = ?", [campaign]).fetchone()[0]:
        print_result(con, RECIPES["race"].sql, {"campaign": campaign}, title="race:")
    print_result(con, SUMMARY_SQL, {"campaign": campaign})
    print(acceptance_summary(con, campaign))


def campaign_status(con: duckdb.DuckDBPyConnection, campaign: str) -> None:
    """One campaign of `farm status`: its state and counts, then its summary."""
    print(_status_line(con, campaign))
    spend = agent_spend_line(con, campaign)
    if spend:
        print(spend)
    final_summary(con, campaign)
    print()


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
    rows = con.execute("SELECT benchmark, ratio, ci_low, ci_high FROM decisions WHERE experiment_id = ? "
                       "ORDER BY benchmark", [experiment]).fetchall()
    decisions = [row for row in rows if not row[0].endswith(INSTRUCTIONS)]
    counts = [row for row in rows if row[0].endswith(INSTRUCTIONS)]
    shown = "; ".join(_ratio_text(*row) for row in decisions)
    lines = [f"final confirmation ({experiment}: the final tip against the base, {blocks} blocks): "
             f"overall {_overall(con, experiment, config, [d[0] for d in decisions], alpha)}; {shown}"]
    if counts:  # measurement.channels [time, instructions]: the counts of its first look, never the verdict
        lines.append(f"instruction counts: {'; '.join(_ratio_text(*row) for row in counts)}")
    products = [f"{name} {ratio:.3f}x [{low:.3f}, {high:.3f}]"
                for name, (ratio, low, high) in landed_product(con, campaign, alpha).items()]
    if products:
        lines.append(f"product of the landed re-measured ratios: {'; '.join(products)}")
    return "\n".join(lines)


def _ratio_text(name: str, ratio: float | None, low: float | None, high: float | None) -> str:
    if ratio is None or low is None or high is None:
        return f"{name} undecided"
    return f"{name} {ratio:.3f}x [{low:.3f}, {high:.3f}]"


def landed_product(con: duckdb.DuckDBPyConnection, campaign: str, alpha: float) -> dict[str, tuple]:
    """Per benchmark: the product of the re-measured ratios landed on the integration branch's history, with an
    interval that combines theirs as independent normal errors of the log ratios."""
    landed = con.execute(f"""SELECT d.benchmark, d.ratio, d.ci_low, d.ci_high FROM merges m
                             JOIN decisions d ON d.experiment_id = m.remeasure_experiment_id
                             WHERE m.campaign = ? AND m.landed AND {ON_INTEGRATION} AND d.ratio > 0
                                   AND d.ci_low > 0 AND d.ci_high > 0
                                   AND NOT ends_with(d.benchmark, '{INSTRUCTIONS}') ORDER BY d.benchmark""",
                         [campaign]).fetchall()
    z = scipy_stats.norm.ppf(1 - alpha / 2)
    products = {}
    for name in sorted({r[0] for r in landed}):
        logs = [(math.log(r), (math.log(high) - math.log(low)) / (2 * z)) for b, r, low, high in landed if b == name]
        centre, se = sum(c for c, _ in logs), math.sqrt(sum(e * e for _, e in logs))
        products[name] = (math.exp(centre), math.exp(centre - z * se), math.exp(centre + z * se))
    return products


def landed_count(con: duckdb.DuckDBPyConnection, campaign: str) -> int:
    """Experiments landed on the integration branch's history."""
    return con.execute(f"SELECT count(*) FROM merges m WHERE m.campaign = ? AND m.landed AND {ON_INTEGRATION}",
                       [campaign]).fetchone()[0]


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
    """Per benchmark, over the campaign's minutes: every screened candidate's median (marked by its status, ringed
    when an artifact was flagged in it) and the integration tip (the line: the base, then each landing's
    re-measured candidate). None when nothing was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = con.execute("SELECT started_at FROM campaigns WHERE id = ?", [campaign]).fetchall()[0][0]
    points = con.execute("""
        SELECT s.benchmark, epoch(e.started_at - $start) / 60 AS minute, e.status, any_value(s.unit) AS unit,
               median(s.value) AS value, e.id IN (SELECT experiment_id FROM artifacts WHERE campaign = $campaign
                                                  AND experiment_id IS NOT NULL) AS flagged
        FROM samples s JOIN experiments e ON e.id = s.experiment_id
        WHERE e.campaign = $campaign AND e.kind = 'screen' AND s.arm = 'cand' GROUP BY ALL ORDER BY minute""",
                         {"campaign": campaign, "start": start}).fetchall()
    if not points:
        return None
    base = dict(con.execute("""
        SELECT s.benchmark, median(s.value) FROM samples s JOIN experiments e ON e.id = s.experiment_id
        JOIN campaigns c ON c.id = e.campaign
        WHERE e.campaign = ? AND s.arm = 'ref' AND e.parent_commit = c.base_commit GROUP BY ALL""",
                            [campaign]).fetchall())
    landings = con.execute(f"""
        SELECT s.benchmark, epoch(m.merged_at - $start) / 60 AS minute, median(s.value)
        FROM merges m JOIN samples s ON s.experiment_id = m.remeasure_experiment_id AND s.arm = 'cand'
        WHERE m.campaign = $campaign AND m.landed AND {ON_INTEGRATION} GROUP BY ALL ORDER BY minute""",
                           {"campaign": campaign, "start": start}).fetchall()
    end = max(p[1] for p in points)
    benchmarks = sorted({p[0] for p in points})
    fig, axes = plt.subplots(len(benchmarks), 1, figsize=(9, 2.3 * len(benchmarks)), sharex=True, squeeze=False)
    for ax, benchmark in zip(axes[:, 0], benchmarks):
        mine = [p for p in points if p[0] == benchmark]
        for status, (marker, colour) in STATUS_STYLE.items():
            shown = [(p[1], p[4]) for p in mine if p[2] == status]
            if shown:
                ax.scatter(*zip(*shown), marker=marker, color=colour, label=status, zorder=3)
        flagged = [(p[1], p[4]) for p in mine if p[5]]
        if flagged:
            ax.scatter(*zip(*flagged), s=160, facecolors="none", edgecolors="tab:orange", label="artifact flagged",
                       zorder=2)
        steps = [(0.0, base[benchmark])] if benchmark in base else []
        steps += [(minute, value) for name, minute, value in landings if name == benchmark]
        if steps:
            ax.step([m for m, _ in steps] + [max(end, steps[-1][0])], [v for _, v in steps] + [steps[-1][1]],
                    where="post", color="black", lw=1.5, label="integration tip", zorder=4)
        ax.set_ylabel(f"{benchmark}\n({mine[0][3]})")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize="small", ncols=4)
    axes[0, 0].set_title(f"{campaign}: screened candidates and the integration tip", fontsize="medium")
    axes[-1, 0].set_xlabel("minutes since the campaign started")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_html(con: duckdb.DuckDBPyConnection, campaign: str, path: pathlib.Path) -> pathlib.Path:
    """One self-contained page (no server, no other file): the final confirmation, the race, what landed, the
    plot, every experiment with its reason, the acceptance figures."""
    with tempfile.TemporaryDirectory() as directory:
        png = write_progress_png(con, campaign, pathlib.Path(directory) / "progress.png")
        image = base64.b64encode(png.read_bytes()).decode() if png else None
    sections = [f"<h1>Campaign {html.escape(campaign)}</h1>",
                f"<p>{html.escape(_status_line(con, campaign))}</p>"]
    headline = confirmation_summary(con, campaign)
    if headline:
        sections += ["<h2>Final confirmation</h2>"] + [f"<p>{html.escape(line)}</p>" for line in headline.splitlines()]
    if con.execute("SELECT count(*) FROM allocations WHERE campaign = ?", [campaign]).fetchall()[0][0]:
        sections += ["<h2>Race</h2>", _html_table(con, RECIPES["race"].sql, campaign)]

    sections += ["<h2>Landed</h2>", _html_table(con, RECIPES["landed"].sql, campaign)]
    if image:
        sections += ["<h2>Progress</h2>", f'<img alt="progress per benchmark" src="data:image/png;base64,{image}">']
    sections += ["<h2>Experiments</h2>", _html_table(con, SUMMARY_SQL, campaign),
                 "<h2>Acceptance</h2>", f"<p>{html.escape(acceptance_summary(con, campaign))}</p>",
                 "<h2>Artifacts</h2>", _html_table(con, RECIPES["artifacts"].sql, campaign)]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left;vertical-align:top}"
             "th{background:#eee}img{max-width:100%}")
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>farm report: "
                    f"{html.escape(campaign)}</title><style>{style}</style></head><body>"
                    + "\n".join(sections) + "</body></html>\n")
    return path


def _html_table(con: duckdb.DuckDBPyConnection, sql: str, campaign: str) -> str:
    cursor = con.cursor().execute(sql, {"campaign": campaign})
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if not rows:
        return "<p>none</p>"
    cell = lambda v: html.escape("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    return ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows) + "</table>")


def agent_spend_line(con: duckdb.DuckDBPyConnection, campaign: str) -> str | None:
    """What the campaign's agents cost, as their CLIs reported it (`agent_runs`); None if no agent ran."""
    runs, unreported, cost, tokens_in, tokens_out, seconds = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE cost_usd IS NULL AND input_tokens IS NULL), sum(cost_usd), "
        "sum(input_tokens), sum(output_tokens), sum(seconds) FROM agent_runs WHERE campaign = ?", [campaign]).fetchone()
    if not runs:
        return None
    said = f", {unreported} of them reported nothing" if unreported else ""
    return (f"agents: {runs} run(s) in {seconds / 60:.1f} min{said}; cost ${cost or 0:.2f}, tokens "
            f"{tokens_in or 0:,} in / {tokens_out or 0:,} out (as the CLIs reported)")


def _status_line(con: duckdb.DuckDBPyConnection, campaign: str) -> str:
    state, started, finished, branch = con.execute(
        "SELECT status, started_at, finished_at, integrated_branch FROM campaigns WHERE id = ?",
        [campaign]).fetchall()[0]
    counts = con.execute("SELECT status, count(*) FROM experiments WHERE campaign = ? GROUP BY 1 ORDER BY 1",
                         [campaign]).fetchall()
    return (f"campaign {campaign}: {state} (started {started:%Y-%m-%d %H:%M:%S}"
            f"{f', finished {finished:%H:%M:%S}' if finished else ''}); "
            + ", ".join(f"{n} {s}" for s, n in counts) + f"; {landed_count(con, campaign)} landed on {branch}")
