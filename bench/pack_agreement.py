"""Do a campaign's verdicts match the cpp_fixture manifest's expected outcomes?

    farm run configs/pack.yaml && python bench/pack_agreement.py .farm/pack/farm.duckdb

Compares every screened hypothesis whose expected outcome is stated against
the naive tree (hypotheses with a `predecessor` are expected relative to it,
so a screen-only campaign cannot reproduce them: they are listed, not
counted). Prints a row per hypothesis, the agreement and the blocks spent.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import duckdb

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import cpp_fixture  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", help="the campaign's DuckDB file")
    args = parser.parse_args(argv)
    con = duckdb.connect(args.db, read_only=True)
    rows = con.execute("""SELECT hypothesis_id, status, blocks, reason FROM experiments
                          WHERE kind = 'screen' AND status <> 'invalidated' ORDER BY id""").fetchall()
    manifest = {h["id"]: h for h in cpp_fixture.load_manifest()}
    agree = counted = 0
    print(f"{'hypothesis':<22} {'expected':<11} {'verdict':<11} {'blocks':>6}  ")
    for hypothesis, status, blocks, _reason in rows:
        entry = manifest.get(hypothesis)
        if entry is None:
            continue
        expected = entry["expected"]["outcome"]
        if entry.get("predecessor"):
            mark = f"(not counted: expected relative to {entry['predecessor']})"
        else:
            counted += 1
            agree += status == expected
            mark = "" if status == expected else "MISMATCH"
        print(f"{hypothesis:<22} {expected:<11} {status:<11} {blocks or 0:>6}  {mark}")
    measured = con.execute("""SELECT count(*), sum(blocks), avg(blocks) FROM experiments
                              WHERE kind = 'screen' AND status IN ('keep', 'discard')""").fetchone()
    canaries = con.execute("SELECT count(*), sum(blocks), count(*) FILTER (status = 'aa_false_positive') "
                           "FROM experiments WHERE kind = 'aa'").fetchone()
    artifacts = con.execute("SELECT kind, count(*) FROM artifacts GROUP BY 1 ORDER BY 1").fetchall()
    print(f"\nagree: {agree}/{counted}")
    print(f"measured experiments: {measured[0]}, blocks {measured[1]} (mean {measured[2] or 0:.1f}); "
          f"A/A canaries: {canaries[0]} ({canaries[1]} blocks, {canaries[2]} false positives); "
          f"artifacts: {dict(artifacts) or 'none'}")
    return 0 if agree == counted else 1


if __name__ == "__main__":
    sys.exit(main())
