"""Several stores in one directory: `farm status` shows them all, `--campaign` picks one for `farm query`."""
from click.testing import CliRunner

from farm.cli import main
from farm.storage.store import Store


def _stores(tmp_path):
    for name in ("alpha", "beta"):
        store = Store(tmp_path / ".farm" / name / "farm.duckdb")
        store.start_campaign(name, "{}", "/repo", "main", "b" * 40, f"farm/{name}/integrated", 2)
        store.close()


def test_status_shows_every_store_and_query_needs_to_know_which(tmp_path, monkeypatch):
    _stores(tmp_path)
    monkeypatch.chdir(tmp_path)
    status = CliRunner().invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert "campaign alpha: running" in status.output and "campaign beta: running" in status.output
    ambiguous = CliRunner().invoke(main, ["query", "SELECT id FROM campaigns"])
    assert ambiguous.exit_code == 1 and "several stores" in ambiguous.stderr and "--campaign" in ambiguous.stderr
    chosen = CliRunner().invoke(main, ["query", "--campaign", "beta", "--format", "csv",
                                       "SELECT id FROM campaigns WHERE id = $campaign"])
    assert chosen.exit_code == 0 and chosen.stdout.splitlines() == ["id", "beta"], chosen.output
    missing = CliRunner().invoke(main, ["query", "--campaign", "gamma", "SELECT 1"])
    assert missing.exit_code == 1 and "no campaign 'gamma'" in missing.stderr and "alpha, beta" in missing.stderr
