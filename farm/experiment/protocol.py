"""Reading benchmark output: the JSON-lines protocol of cpp_fixture/README.md,
or `name: value unit` lines matched by a regular expression."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from farm.errors import ProtocolError

# samples.pid and the items of samples.cpus are INTEGER in farm/storage/schema.sql: DuckDB's 32-bit signed integer. A
# larger number would be acknowledged with its block and refused by the store when the block is written.
INTEGER_MAX = 2**31 - 1


@dataclass(frozen=True)
class Reading:
    name: str
    value: float
    unit: str
    cpus: tuple[int, ...] | None  # as reported by the benchmark process, if it did
    pid: int | None


def _show(raw) -> str:
    """A value as quoted in an error line: its repr, cut short (a benchmark may print a 4000-digit number)."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(name: str, raw) -> float:
    # JSON true/false are ints to Python, not benchmark values.
    if isinstance(raw, bool):
        raise ProtocolError("bench", f"benchmark {name!r}: value {_show(raw)} is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise ProtocolError("bench", f"benchmark {name!r}: value {_show(raw)} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ProtocolError("bench", f"benchmark {name!r}: value {_show(raw)} is not a positive finite number")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(name: str, field: str, value: str) -> str:
    """`value` (a benchmark's name or unit) if it is text the store and a terminal can take: no lone surrogate
    (JSON's "\\ud800" escape makes one, and UTF-8 cannot encode it) and no NUL character; else ProtocolError."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("bench", f"benchmark {name!r}: {field} {_show(value)} is not valid UTF-8 text "
                                     f"(a lone surrogate)") from None
    if "\0" in value:
        raise ProtocolError("bench", f"benchmark {name!r}: {field} {_show(value)} contains a NUL character")
    return value


def _from_json(line: str) -> Reading:
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as error:
        # ValueError covers JSONDecodeError and integers too long to convert; RecursionError, deep nesting.
        reason = error.msg if isinstance(error, json.JSONDecodeError) else type(error).__name__
        raise ProtocolError("bench", f"not JSON ({reason}): {line[:120]!r}") from None
    if not isinstance(row, dict) or "name" not in row or "value" not in row:
        raise ProtocolError("bench", f"JSON line without `name` and `value`: {line[:120]!r}")
    name = row["name"]
    if not isinstance(name, str) or not name.strip():
        raise ProtocolError("bench", f"benchmark name {_show(name)} is not a non-empty string: {line[:120]!r}")
    _text(name, "name", name)
    value = _number(name, row["value"])
    unit = row.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise ProtocolError("bench", f"benchmark {name!r}: `unit` {_show(unit)} is not a string")
    unit = _text(name, "`unit`", unit or "")
    # `cpus` and `pid` are optional, but when given they are checked against the worker's pinning: a wrong
    # type is a broken benchmark, not something to guess around. Both must fit the store's INTEGER columns.
    cpus = row.get("cpus")
    if cpus is not None and not (isinstance(cpus, list)
                                 and all(_is_int(c) and 0 <= c <= INTEGER_MAX for c in cpus)):
        raise ProtocolError("bench", f"benchmark {name!r}: `cpus` {_show(cpus)} is not a list of CPU numbers "
                                     f"(0 to {INTEGER_MAX})")
    pid = row.get("pid")
    if pid is not None and not (_is_int(pid) and 0 < pid <= INTEGER_MAX):
        raise ProtocolError("bench", f"benchmark {name!r}: `pid` {_show(pid)} is not a process id "
                                     f"(1 to {INTEGER_MAX})")
    return Reading(name, value, unit, tuple(cpus) if cpus is not None else None, pid)


def parse_output(stdout: str, protocol: str, pattern: str, required: list[str]) -> list[Reading]:
    """The readings in a benchmark process's stdout.

    jsonl: every line starting with `{` must be a JSON object with name and
    value; other lines are ignored (logs). regex: lines matching `pattern`.
    Raises ProtocolError if a line is malformed, a value is not a positive
    finite number, a name or unit is not valid UTF-8 text or holds a NUL, a
    pid or CPU number does not fit the store's INTEGER, a benchmark repeats,
    nothing is read, or a `required` benchmark is missing.
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
                if not name:  # the `name` group is optional in the pattern and took no part in this match
                    raise ProtocolError("bench", f"bench.pattern matched a line without a `name`: {line[:120]!r}")
                _text(name, "name", name)
                unit = _text(name, "unit", match.groupdict().get("unit") or "")
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
