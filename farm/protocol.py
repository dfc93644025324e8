"""Reading benchmark output: the JSON-lines protocol of cpp_fixture/README.md,
or `name: value unit` lines matched by a regular expression."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from farm.errors import ProtocolError


@dataclass(frozen=True)
class Reading:
    name: str
    value: float
    unit: str
    cpus: tuple[int, ...] | None  # as reported by the benchmark process, if it did
    pid: int | None


def _number(name: str, raw) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ProtocolError("bench", f"benchmark {name!r}: value {raw!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ProtocolError("bench", f"benchmark {name!r}: value {raw!r} is not a positive finite number")
    return value


def _from_json(line: str) -> Reading:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ProtocolError("bench", f"not JSON ({error.msg}): {line[:120]!r}") from None
    if not isinstance(row, dict) or "name" not in row or "value" not in row:
        raise ProtocolError("bench", f"JSON line without `name` and `value`: {line[:120]!r}")
    name = str(row["name"])
    cpus = row.get("cpus")
    cpus = tuple(int(c) for c in cpus) if isinstance(cpus, list) else None
    pid = row.get("pid") if isinstance(row.get("pid"), int) else None
    return Reading(name, _number(name, row["value"]), str(row.get("unit", "")), cpus, pid)


def parse_output(stdout: str, protocol: str, pattern: str, required: list[str]) -> list[Reading]:
    """The readings in a benchmark process's stdout.

    jsonl: every line starting with `{` must be a JSON object with name and
    value; other lines are ignored (logs). regex: lines matching `pattern`.
    Raises ProtocolError if a line is malformed, a value is not a positive
    finite number, a benchmark repeats, nothing is read, or a `required`
    benchmark is missing.
    """
    readings: list[Reading] = []
    if protocol == "jsonl":
        readings = [_from_json(line) for line in map(str.strip, stdout.splitlines()) if line.startswith("{")]
    else:
        regex = re.compile(pattern)
        for line in stdout.splitlines():
            match = regex.match(line)
            if match:
                name = match.group("name")
                unit = match.groupdict().get("unit") or ""
                readings.append(Reading(name, _number(name, match.group("value")), unit, None, None))
    if not readings:
        tail = stdout.strip()[-200:]
        raise ProtocolError("bench", f"no benchmark values in the output ({protocol} protocol): {tail!r}")
    names = [r.name for r in readings]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProtocolError("bench", f"benchmark(s) reported twice in one run: {duplicates}")
    missing = [name for name in required if name not in names]
    if missing:
        raise ProtocolError("bench", f"benchmark(s) {missing} missing from the output (got {names})")
    return readings
