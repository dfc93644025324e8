"""Red team: a knob search cannot fake a win by writing outside its checkout or by adding lines to the env file.

Three knob strategies, each one way to make the reference arm slower (a fake win for the candidate) or to run
the phases with a variable nobody asked for:
- `inject`: a flags value with a newline and `LD_PRELOAD=...` (a line of its own in the env file);
- `dots`: a knob file `../ref/prog.py`, the worker's reference slot beside the candidate's;
- `link`: a knob file that is a tracked symbolic link to `../ref/prog.py`.
`farm validate` and `farm run` refuse all three with one line each. Past the config's checks (as a campaign
restored from its store would be), the real campaign ends each experiment as `crash` with a one-line reason,
measures nothing for it, and leaves the reference slot and the env files as they were, so an honest change
measured after them on the same worker is compared with the real reference. On main, the LD_PRELOAD line
reached the phases, and the reference slot's loop was made 10x longer for every later experiment on the parent.
"""
import re
import subprocess

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from farm.campaign_file.config import CampaignConfig, StrategyConfig
from farm.cli import main
from scheduler.runtime import run_campaign
from tests.ray_once import local_ray
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow
INJECTED = "-O2\nLD_PRELOAD=/tmp/evil.so"
REF_SLOW = "4000000"  # N of the reference slot's loop: 10x the real one, a fake 10x win for the candidate
N_PATTERN = r"^N = (\d+)$"


@pytest.fixture(scope="module")
def ray_session():
    with local_ray():
        yield


def _repo(tmp_path):
    """The tiny repository, plus knobs.txt: a tracked link from a checkout to the worker's reference slot."""
    repo = make_repo(tmp_path / "repo")
    (repo / "knobs.txt").symlink_to("../ref/prog.py")
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "knobs link"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def _strategies(inject_value: str, dots_file: str) -> list[dict]:
    return [{"name": "inject", "knobs": {"params": [{"name": "flags", "values": [inject_value],
                                                     "write": {"flags": "CXXFLAGS"}}]}},
            {"name": "dots", "knobs": {"params": [{"name": "n", "values": [REF_SLOW],
                                                   "write": {"file": dots_file, "pattern": N_PATTERN}}]}},
            {"name": "link", "knobs": {"params": [{"name": "n", "values": [REF_SLOW],
                                                   "write": {"file": "knobs.txt", "pattern": N_PATTERN}}]}}]


def _data(repo, strategies: list[dict]) -> dict:
    return config_dict(repo, [], workers={"count": 1}, measurement={"mode": "exclusive"},
                       merge={"enabled": False}, strategies=strategies)


def _farm(*args):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stderr.splitlines()


def test_farm_validate_and_run_refuse_each_knob_with_one_line(tmp_path):
    repo = _repo(tmp_path)
    path = tmp_path / "knobs.yaml"
    path.write_text(yaml.safe_dump(_data(repo, _strategies(INJECTED, "../ref/prog.py"))))
    for command in ("validate", "run"):
        code, lines = _farm(command, str(path), "--workdir", str(tmp_path / "work"))
        assert code == 2 and len(lines) == 2, lines
        assert lines[0].startswith(f"{path}: strategies.0.knobs.params.0.values: ") and \
            "'-O2\\nLD_PRELOAD=/tmp/evil.so' holds a line break or NUL" in lines[0]
        assert lines[1].startswith(f"{path}: strategies.1.knobs.params.0.write.file: ") and \
            "'../ref/prog.py' is not a file inside the checkout" in lines[1]
    # The link passes the file's own checks; the repository's are `farm validate`'s, and `farm run` makes them
    # before Ray starts.
    path.write_text(yaml.safe_dump(_data(repo, _strategies("-O2", "prog.py"))))
    for command in ("validate", "run"):
        code, lines = _farm(command, str(path), "--workdir", str(tmp_path / "work"))
        assert code == 2 and lines == [(f"{path}: strategies.2.knobs.params.0.write: knobs.txt is a symbolic link "
                                        f"in main; give the path of the file itself")], lines
    assert not (tmp_path / "work" / "farm.duckdb").exists()


def _past_the_checks(config: CampaignConfig, strategy: str, **update) -> CampaignConfig:
    """The config with the first knob of `strategy` changed (`values`, or `file` of its write), not validated:
    model_copy checks nothing, as if the setting had got past the config (a campaign restored from its store)."""
    strategies = list(config.strategies)
    index = [s.name for s in strategies].index(strategy)
    knobs = strategies[index].knobs
    knob = knobs.params[0]
    if "file" in update:
        knob = knob.model_copy(update={"write": knob.write.model_copy(update=update)})
    else:
        knob = knob.model_copy(update=update)
    strategies[index] = strategies[index].model_copy(
        update={"knobs": knobs.model_copy(update={"params": [knob, *knobs.params[1:]]})})
    return config.model_copy(update={"strategies": strategies})


def test_past_the_config_each_knob_ends_as_a_crash_and_nothing_is_measured(ray_session, tmp_path):
    repo = _repo(tmp_path)
    config = CampaignConfig(**_data(repo, _strategies("-O2", "prog.py")))
    config = _past_the_checks(config, "inject", values=[INJECTED])
    config = _past_the_checks(config, "dots", file="../ref/prog.py")
    # A change that does nothing, measured on the same worker after the knobs: against the real reference.
    comment = make_patch(repo, tmp_path / "comment.patch", "N = 400000", "N = 400000  # the same loop")
    honest = {"name": "honest", "hypotheses": [{"id": "comment", "patch": str(comment), "after": "link-001"}]}
    config = config.model_copy(update={"strategies": [*config.strategies, StrategyConfig.model_validate(honest)]})
    work = tmp_path / "work"
    run_campaign(config, work, work / "farm.duckdb", echo=lambda line: None)

    con = duckdb.connect(str(work / "farm.duckdb"), read_only=True)
    rows = {h: (e, status, reason) for e, h, status, reason in con.execute(
        "SELECT id, hypothesis_id, status, reason FROM experiments WHERE kind = 'screen'").fetchall()}
    honest_id = rows.pop("comment")[0]
    assert {h: status for h, (_, status, _) in rows.items()} == {"inject-001": "crash", "dots-001": "crash",
                                                                 "link-001": "crash"}
    reasons = {h: reason for h, (_, _, reason) in rows.items()}
    assert all("\n" not in reason for reason in reasons.values()), reasons
    assert reasons["inject-001"] == ("knob flags: the value '-O2\\nLD_PRELOAD=/tmp/evil.so' holds a line break or "
                                     "NUL; a knob value is one line of text")
    assert re.fullmatch(r"knob n: \.\./ref/prog\.py leads outside the checkout \(to /.*/ref/prog\.py\); refused",
                        reasons["dots-001"]), reasons
    assert re.fullmatch(r"knob n: knobs\.txt leads outside the checkout \(to /.*/ref/prog\.py\); refused",
                        reasons["link-001"]), reasons
    experiments = [e for e, _, _ in rows.values()]
    assert con.execute("SELECT count(*) FROM samples WHERE experiment_id IN (SELECT unnest(?))",
                       [experiments]).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM decisions WHERE experiment_id IN (SELECT unnest(?))",
                       [experiments]).fetchone() == (0,)
    # The reference slot's loop is the repository's, and no env file anywhere holds the injected line.
    ref_progs = list(work.rglob("ref/prog.py"))
    assert ref_progs and all("N = 400000\n" in p.read_text() for p in ref_progs)
    assert all("LD_PRELOAD" not in p.read_text() for p in work.rglob(".farm-env"))
    (ref, cand), = con.execute("SELECT median(value) FILTER (arm = 'ref'), median(value) FILTER (arm = 'cand') "
                               "FROM samples WHERE experiment_id = ?", [honest_id]).fetchall()
    assert ref / cand < 2, (ref, cand)  # the same loop in both arms; 10x with a reference slot of N = 4000000
