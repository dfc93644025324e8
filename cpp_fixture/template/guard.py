"""Correctness guard: every benchmark's output checksum must equal checksums.json.

    python guard.py            exit 0 if all match, 1 naming each that differs
    python guard.py --record   write the current checksums to checksums.json
"""
import argparse
import json
import pathlib
import sys

from harness.workloads import WORKLOADS, checksum

EXPECTED = pathlib.Path(__file__).resolve().parent / "checksums.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="record the current checksums as the baseline")
    args = parser.parse_args()
    actual = {name: checksum(setup()()) for name, setup in WORKLOADS.items()}
    if args.record:
        EXPECTED.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
        print(f"guard: recorded {len(actual)} checksums in {EXPECTED.name}")
        return 0
    expected = json.loads(EXPECTED.read_text())
    failures = [f"{name}: checksum {actual.get(name)} != expected {want}"
                for name, want in sorted(expected.items()) if actual.get(name) != want]
    for line in failures:
        print(f"guard: FAIL {line}")
    if failures:
        return 1
    print(f"guard: ok ({len(expected)} benchmarks match checksums.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
