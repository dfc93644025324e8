"""The `farm` command line."""
from __future__ import annotations

import json
import pathlib
import shutil
import sys
import traceback

import click

from cpp_fixture import FixtureError
from farm.campaign_file.config import CampaignConfig, load_config
from farm.errors import ConfigError, FarmError, StoreError
from worktrees import WorktreeError


def _fail(error: Exception, debug: bool, code: int):
    if debug:
        traceback.print_exception(error)
    # Config errors are already `file: field.path: message` lines.
    click.echo(("" if isinstance(error, ConfigError) else "error: ") + str(error), err=True)
    sys.exit(code)


# What a user is told in one line: the farm's own errors, and those of the layers below it that stay free of
# farm/ (worktrees/: git; cpp_fixture/: the fixture's set-up). farm/errors.py draws the tree.
USER_ERRORS = (FarmError, WorktreeError, FixtureError)


class FarmGroup(click.Group):
    """Turns a user error (USER_ERRORS) into one line (per problem) and a non-zero exit; --debug shows the
    traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            _fail(error, ctx.obj.get("debug", False) if ctx.obj else False, 2)
        except USER_ERRORS as error:
            _fail(error, ctx.obj.get("debug", False) if ctx.obj else False, 1)


@click.group(cls=FarmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """autoresearch-farm: run many optimisation experiments at once, each in its own git
    worktree on pinned CPUs, keep only measured wins, land them with a fresh re-measurement,
    and keep every sample in DuckDB.

    \b
    Start here:
      farm validate configs/demo.yaml     check a campaign file
      farm run configs/demo.yaml          run it (local Ray, DuckDB in the workdir)
      farm status                         what the last campaign did
      farm query "SELECT * FROM experiments"
    """
    ctx.obj = {"debug": debug}


def _workdir(config: CampaignConfig, override: str | None) -> pathlib.Path:
    if override:
        return pathlib.Path(override).resolve()
    if config.workdir:
        return config.resolve(config.workdir)
    return (pathlib.Path.cwd() / ".farm" / config.campaign).resolve()


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--workdir", help="Worktrees, logs, store and reports (default: config workdir or .farm/<campaign>).")
@click.option("--db", help="DuckDB file (default: <workdir>/farm.duckdb).")
@click.option("--workers", type=click.IntRange(min=1), help="Number of workers (overrides the config).")
@click.option("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")
@click.option("--max-experiments", type=click.IntRange(min=0), help="Stop starting new hypotheses after N.")
@click.option("--fresh", is_flag=True, help="Delete this campaign's previous workdir first, and archive its "
                                            "branches in the target repository under refs/farm-archive/.")
@click.option("--resume", is_flag=True, help="Continue this campaign from its store after a crash or an "
                                             "interrupt: finished experiments stay, running ones run again.")
def run(config_path, workdir, db, workers, address, max_experiments, fresh, resume):
    """Run the campaign in CONFIG to the end, then print a summary and write progress.png.

    \b
    Ctrl-C (or SIGTERM) once: no new experiments, the running ones finish.
    Twice: the running ones are abandoned. Either way every process the
    campaign started is killed and `farm run CONFIG --resume` continues it.
    \b
    Exit codes: 0 finished, 1 error, 2 invalid campaign file, 130 interrupted.
    """
    from farm.campaign_file.validate import check_campaign
    from farm.node.campaign_lock import campaign_lock
    from farm.node.processes import kill_campaign_leftovers

    if fresh and resume:
        raise click.UsageError("--fresh starts over and --resume continues: give one of them")
    config = load_config(config_path)
    workdir_path = _workdir(config, workdir)
    db_path = pathlib.Path(db).resolve() if db else (config.resolve(config.db) if config.db
                                                     else workdir_path / "farm.duckdb")
    with campaign_lock(workdir_path):
        leftovers = kill_campaign_leftovers(config.campaign, workdir_path)
        if leftovers:
            click.echo(f"killed {leftovers} process(es) left running by an earlier run of {config.campaign}")
        deleted = fresh and workdir_path.exists()
        if deleted and not ((workdir_path / "farm.duckdb").exists() or (workdir_path / "workers").exists()):
            raise FarmError(f"--fresh: {workdir_path} does not look like a farm workdir; remove it yourself")
        # Every refusal comes before --fresh deletes anything: a store outside the workdir stays.
        state = None if deleted and db_path.is_relative_to(workdir_path) else _campaign_status(db_path,
                                                                                                config.campaign)
        if resume and state is None:
            raise FarmError(f"--resume: campaign {config.campaign!r} has not run in {db_path}; start it without "
                            f"--resume")
        if resume and state == "finished":
            raise FarmError(f"--resume: campaign {config.campaign!r} in {db_path} finished already; nothing to resume")
        if not resume and state is not None:
            advice = ("--fresh to start over" if db_path.is_relative_to(workdir_path)
                      else f"--db for another store (--fresh clears {workdir_path}, not {db_path})")
            resume_advice = "" if state == "finished" else "--resume to continue it, or "
            raise FarmError(f"campaign {config.campaign!r} already ran in {db_path} ({state}); pass "
                            f"{resume_advice}{advice}")
        if deleted:
            shutil.rmtree(workdir_path)
        check_campaign(config, workdir_path, workers)  # the checks of `farm validate`, before Ray starts
        from scheduler.runtime import run_campaign  # Ray is imported only when a campaign runs

        summary = run_campaign(config, workdir_path, db_path, workers=workers, address=address,
                               max_experiments=max_experiments, echo=lambda line: click.echo(line), resume=resume,
                               fresh=fresh, live=sys.stdout.isatty())
    from farm.storage.report import final_summary, write_progress_png
    from farm.storage.store import open_readonly

    con = open_readonly(db_path)
    click.echo()
    final_summary(con, config.campaign)
    png = write_progress_png(con, config.campaign, workdir_path / "progress.png")
    con.close()
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items()))
    click.echo(f"\n{summary.campaign}: {statuses or 'no experiments'}; landed {len(summary.landed)} on "
               f"{summary.integrated_branch} ({summary.base_commit[:10]}..{summary.tip[:10]}) in {summary.repo}")
    click.echo(f"store: {db_path}" + (f"   plot: {png}" if png else ""))
    if summary.interrupted:
        click.echo(f"interrupted: continue with `farm run {config_path} --resume`")
        sys.exit(130)


def _campaign_status(db_path: pathlib.Path, campaign: str) -> str | None:
    """The campaign's status in the store, None if it has not run there."""
    if not db_path.exists():
        return None
    from farm.storage.store import open_readonly

    con = open_readonly(db_path)
    try:
        row = con.execute("SELECT status FROM campaigns WHERE id = ?", [campaign]).fetchone()
    finally:
        con.close()
    return row[0] if row else None


@main.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--workdir", help="The workdir `farm run` would use (default: config workdir or .farm/<campaign>).")
def validate(config_path, workdir):
    """Check CONFIG, its hypotheses, the target repository and base ref, and the CPU sets on this machine;
    print `file: field.path: message` per problem (exit 2) or a summary."""
    from farm.campaign_file.validate import check_campaign

    config = load_config(config_path)
    checked = check_campaign(config, _workdir(config, workdir))
    click.echo(f"{config_path}: ok: campaign {config.campaign!r}, {len(config.strategies)} strategy(ies), "
               f"{len(checked.hypotheses)} hypotheses; base {config.target.base_ref} = {checked.base_commit[:12]}; "
               f"CPU sets {[list(cpus) for cpus in checked.cpu_sets]}")
    for label, command in checked.agents.items():
        click.echo(f"{label}: {command}")


@main.command()
@click.argument("config_path", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
def doctor(config_path):
    """What on this machine spoils measurements (clock governor, turbo, SMT siblings, load, cgroup quota,
    isolated cores, ASLR, spare CPUs, irqbalance, virtualisation, steal), and what to do about each.

    Checks the worker CPU sets of CONFIG, else one CPU per worker over the available CPUs. One line per
    check (ok, warn or unknown), the advice under it, then a summary. Exit 0 even with warnings (it is
    advice, nothing is changed); exit 2 for an invalid CONFIG.
    """
    from farm.node import doctor as node_doctor

    if config_path:
        worker_sets = node_doctor.config_worker_sets(load_config(config_path))
        origin = config_path
    else:
        worker_sets = node_doctor.default_worker_sets()
        origin = "one CPU per worker over the available CPUs"
    sets = " ".join(f"w{index}:[{node_doctor.format_cpu_list(cpus)}]" for index, cpus in enumerate(worker_sets))
    click.echo(f"worker CPU sets {sets} ({origin})")
    checks = node_doctor.run_checks(worker_sets)
    width = max(len(check.name) for check in checks)
    for check in checks:
        click.echo(f"{check.state:<7}  {check.name:<{width}}  {check.found}")
        if check.advice:
            click.echo(f"{'':<7}  {'':<{width}}  -> {check.advice}")
    click.echo(node_doctor.summary_line(checks))


@main.command()
def schema():
    """Print the JSON schema of a campaign file (every field with its description)."""
    click.echo(json.dumps(CampaignConfig.model_json_schema(), indent=2))


def _stores(dbs: tuple[str, ...]) -> list[pathlib.Path]:
    """The stores named with --db, else every .farm/*/farm.duckdb under the current directory."""
    if dbs:
        return [pathlib.Path(db) for db in dbs]
    found = sorted(pathlib.Path.cwd().glob(".farm/*/farm.duckdb"))
    if not found:
        raise StoreError("no store found under .farm/: pass --db FILE")
    return found


def _note_snapshot(path: pathlib.Path, age: float) -> None:
    click.echo(f"(the campaign is running: reading its snapshot {path.name}, {age:.0f} s old)", err=True)


def _open_campaign(dbs: tuple[str, ...], campaign: str | None):
    """(connection, campaign, store): the store holding `campaign` among the given or found stores; without
    --campaign, the one store there is and its latest campaign."""
    from farm.storage.store import open_readonly

    stores = _stores(dbs)
    if campaign is None:
        if len(stores) > 1:
            raise StoreError(f"several stores ({', '.join(map(str, stores))}): pass --campaign NAME or --db FILE")
        con = open_readonly(stores[0], _note_snapshot)
        row = con.execute("SELECT id FROM campaigns ORDER BY started_at DESC LIMIT 1").fetchone()
        return con, row[0] if row else None, stores[0]
    held = []
    for store in stores:
        con = open_readonly(store, _note_snapshot)
        names = [name for (name,) in con.execute("SELECT id FROM campaigns").fetchall()]
        if campaign in names:
            return con, campaign, store
        held += names
        con.close()
    raise StoreError(f"no campaign {campaign!r} in {', '.join(map(str, stores))} (campaigns there: "
                     f"{', '.join(sorted(held)) or 'none'})")


DB_OPTION = click.option("--db", multiple=True, help="DuckDB file; repeat for several (default: every "
                                                     ".farm/*/farm.duckdb here).")
CAMPAIGN_OPTION = click.option("--campaign", help="The campaign (default: the latest in the only store).")


@main.command()
@click.argument("sql", required=False)
@click.option("--recipe", help="A named post-mortem query instead of SQL (see --recipes).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A recipe's or the SQL's $NAME, e.g. --param experiment=demo-0003 ($campaign is filled in).")
@click.option("--recipes", "list_recipes", is_flag=True, help="List the recipes and what each answers.")
@DB_OPTION
@CAMPAIGN_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def query(sql, recipe, params, list_recipes, db, campaign, fmt):
    """Run SQL (or a recipe) on a campaign store, read-only; a running campaign is read from its snapshot.
    The tables and their columns are described in farm/storage/schema.sql.

    \b
    farm query "SELECT id, status, effect FROM experiments"
    farm query --recipe why-discarded --format csv
    farm query --recipe samples --param experiment=demo-0003 --param benchmark=idw2d
    """
    from farm.storage.cookbook import RECIPES
    from farm.storage.report import print_result

    if list_recipes:
        for name, entry in RECIPES.items():
            needs = " ".join(f"--param {p}=..." for p in entry.params if p != "campaign")
            click.echo(f"{name:14} {entry.question}" + (f" ({needs})" if needs else ""))
        return
    if (sql is None) == (recipe is None):
        raise click.UsageError("give SQL or --recipe NAME (farm query --recipes lists them)")
    if recipe is not None:
        if recipe not in RECIPES:
            raise click.UsageError(f"no recipe {recipe!r}; one of {', '.join(RECIPES)}")
        sql = RECIPES[recipe].sql
    values = {}
    for param in params:
        name, equals, value = param.partition("=")
        if not equals:
            raise click.UsageError(f"--param {param!r}: give NAME=VALUE")
        values[name] = value
    con, chosen, _ = _open_campaign(db, campaign)
    values.setdefault("campaign", chosen)
    print_result(con, sql, values, fmt)


@main.command()
@DB_OPTION
@CAMPAIGN_OPTION
def status(db, campaign):
    """Campaigns in the stores, their experiments by status, and what landed; a running campaign from its
    snapshot."""
    from rich.console import Console

    from farm.storage.live import board_phases, from_store, render
    from farm.storage.report import campaign_status
    from farm.storage.store import open_readonly

    for store in _stores(db):
        snapshots = []

        def note(path, age, snapshots=snapshots):
            snapshots.append(path)
            _note_snapshot(path, age)

        con = open_readonly(store, note)
        names = [name for (name,) in con.execute("SELECT id FROM campaigns ORDER BY started_at").fetchall()]
        for name in names:
            if campaign in (None, name):
                click.echo(f"store {store}")
                campaign_status(con, name)
                if snapshots and con.execute("SELECT status FROM campaigns WHERE id = ?", [name]).fetchall() == [
                        ("running",)]:
                    Console().print(render(from_store(con, name), board_phases(store.parent / "workers")))
        con.close()


@main.command()
@DB_OPTION
@CAMPAIGN_OPTION
@click.option("--png", type=click.Path(dir_okay=False), help="Also write the plot: per benchmark, every screened "
                                                             "candidate by status and the integration tip.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write one self-contained page (tables, the plot, every experiment's reason, the final "
                   "confirmation) that opens in a browser without a server.")
def report(db, campaign, png, html_path):
    """A campaign's report: the final confirmation, the race, every experiment, the acceptance figures."""
    from farm.storage.report import campaign_status, write_html, write_progress_png

    con, chosen, _ = _open_campaign(db, campaign)
    if chosen is None:
        raise FarmError("the store holds no campaign yet")
    campaign_status(con, chosen)
    if png:
        written = write_progress_png(con, chosen, pathlib.Path(png))
        click.echo(f"plot: {written}" if written else "plot: nothing measured yet, no plot written")
    if html_path:
        click.echo(f"page: {write_html(con, chosen, pathlib.Path(html_path))}")


@main.command()
@DB_OPTION
@CAMPAIGN_OPTION
@click.option("--out", type=click.Path(file_okay=False), help="Directory to write (default: export/ beside the "
                                                              "store); it must not hold an export already.")
def export(db, campaign, out):
    """Write the store for other tools: every table as Parquet (<table>.parquet, with DuckDB's schema.sql and
    load.sql), and the campaign's screens as karpathy/autoresearch's results.tsv and pi-autoresearch's
    autoresearch.jsonl (metric: the experiment's effect, < 1 is better)."""
    from farm.storage.export import export_autoresearch_jsonl, export_parquet, export_results_tsv

    con, chosen, store = _open_campaign(db, campaign)
    directory = pathlib.Path(out) if out else store.parent / "export"
    if directory.exists() and any(directory.iterdir()):
        raise FarmError(f"{directory} is not empty: pass --out with a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    tables = export_parquet(con, directory)
    screens = export_results_tsv(con, chosen, directory / "results.tsv")
    export_autoresearch_jsonl(con, chosen, directory / "autoresearch.jsonl")
    click.echo(f"{directory}: {len(tables)} tables as Parquet; results.tsv and autoresearch.jsonl with the "
               f"{screens} screens of {chosen}")


if __name__ == "__main__":
    main()
