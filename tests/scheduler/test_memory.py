"""Memory as a metric in a real campaign on local Ray: every benchmark run's peak resident memory is stored with
its samples, a `peak_rss` benchmark is decided like the others, the memory guard refuses a candidate that
doubles its memory however much faster it is, and results.tsv's memory_gb holds the real figure."""
import textwrap

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from farm.storage.export import export_results_tsv
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow

PROG = textwrap.dedent('''\
    import json
    import time

    MB = 60
    N = 400000
    held = bytearray(MB * 2**20)
    held[::4096] = b"1" * len(held[::4096])  # touched: resident, not only reserved
    start = time.perf_counter()
    total = 0
    for i in range(N):
        total += i * i
    print(json.dumps({"name": "loop", "value": time.perf_counter() - start, "unit": "s"}))
''')


def test_a_candidate_that_doubles_its_memory_is_refused_and_one_that_halves_it_is_kept(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo", prog=PROG)
    original = "MB = 60\nN = 400000"
    hypotheses = [{"id": "hog", "patch": str(make_patch(repo, tmp_path / "h.patch", original, "MB = 120\nN = 260000"))},
                  {"id": "lean", "patch": str(make_patch(repo, tmp_path / "l.patch", original, "MB = 20\nN = 400000"))}]
    data = config_dict(repo, hypotheses, workers={"count": 1})
    data["benchmarks"] = {"loop": {}, "mem": {"metric": "peak_rss"}}
    data["phases"]["guard"]["memory_growth"] = 0.25
    config = CampaignConfig(**data)
    db = tmp_path / "work" / "farm.duckdb"
    run_campaign(config, tmp_path / "work", db, echo=lambda line: None)

    con = duckdb.connect(str(db), read_only=True)
    screens = {h: (status, reason) for h, status, reason in con.execute(
        "SELECT hypothesis_id, status, reason FROM experiments WHERE kind = 'screen'").fetchall()}
    assert screens["hog"][0] == "guard_fail" and screens["hog"][1].startswith("memory guard: peak resident memory "
                                                                              "1.8"), screens["hog"]
    assert screens["lean"][0] == "keep" and "mem 0.4" in screens["lean"][1], screens["lean"]
    # Every sample carries its run's peak; the `mem` benchmark is that peak, in bytes.
    assert con.execute("SELECT count(*) FROM samples WHERE peak_rss IS NULL").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM samples WHERE benchmark = 'mem' AND (value != peak_rss OR unit != "
                       "'bytes')").fetchone() == (0,)
    tsv = tmp_path / "results.tsv"
    export_results_tsv(con, "tiny", tsv)
    memory_gb = {line.split("\t")[4].split()[0]: float(line.split("\t")[2])
                 for line in tsv.read_text().splitlines()[1:]}
    assert 0.13 < memory_gb["hog"] < 0.16 and 0.02 < memory_gb["lean"] < 0.05, memory_gb
