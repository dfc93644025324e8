"""`farm run` against a store where the campaign already ran: what it refuses, and what it says to do."""
import pytest
import yaml
from click.testing import CliRunner

from farm.cli import main
from farm.storage.store import Store
from tests.scheduler.tiny_repo import config_dict, make_repo


@pytest.fixture
def campaign_file(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (tmp_path / "h.patch").write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config_dict(repo, [{"id": "h", "patch": str(tmp_path / "h.patch")}])))
    return path


def _ran(tmp_path, status):
    store = Store(tmp_path / "work" / "farm.duckdb")
    store.start_campaign("tiny", "{}", str(tmp_path / "repo"), "main", "b" * 40, "farm/tiny/integrated", 2)
    store.finish_campaign("tiny", status)
    store.close()


def _run(campaign_file, tmp_path, *args):
    result = CliRunner().invoke(main, ["run", str(campaign_file), "--workdir", str(tmp_path / "work"), *args])
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("status, advice", [("finished", "pass --fresh to start over"),
                                            ("interrupted", "pass --resume to continue it, or --fresh"),
                                            ("running", "pass --resume to continue it, or --fresh")])
def test_a_campaign_that_ran_is_not_run_again_by_accident(campaign_file, tmp_path, status, advice):
    _ran(tmp_path, status)
    result = _run(campaign_file, tmp_path)
    assert result.exit_code == 1 and f"already ran in {tmp_path / 'work' / 'farm.duckdb'} ({status}); {advice}" \
        in result.output


def test_resume_needs_a_campaign_that_ran_and_did_not_finish(campaign_file, tmp_path):
    result = _run(campaign_file, tmp_path, "--resume")
    assert result.exit_code == 1 and "has not run in" in result.output
    _ran(tmp_path, "finished")
    result = _run(campaign_file, tmp_path, "--resume")
    assert result.exit_code == 1 and "finished already; nothing to resume" in result.output
    result = _run(campaign_file, tmp_path, "--resume", "--fresh")
    assert result.exit_code == 2 and "give one of them" in result.output
