"""The benchmark harness: workloads, timing and checksums.

This folder, bench.py, guard.py and checksums.json are the fixed part of the
fixture (like autoresearch's prepare.py); a change to them is tampering.
"""
