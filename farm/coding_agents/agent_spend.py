"""What a coding-agent CLI says a run cost: money, tokens, turns and its session, read from its own output.

Each preset asks its CLI for a machine-readable session summary on stdout (`command.report` names the format,
for a custom command line too):

    claude-json    Claude Code `-p --output-format json`: one JSON object of type "result" at the end, with
                   total_cost_usd, usage (input, cache creation and cache read tokens; output tokens),
                   num_turns and session_id.
    codex-jsonl    Codex `exec --json`: JSON events; thread.started has the thread id, every turn.completed
                   a turn's usage (input_tokens, cached ones included, and output_tokens). No money.
    opencode-json  OpenCode `run --format json`: JSON events; every step_finish has its part's tokens
                   (input, output, reasoning, cache read and write) and cost.
    aider-text     Aider's text: "Tokens: 2.3k sent, 150 received. Cost: $0.01 message, $0.02 session."
                   after each message (the last line's session cost; the messages' tokens added up).

The output is the agent's, so it is parsed as data: a field of the wrong type, a negative or non-finite number
or one beyond the store's BIGINT is left out (None), never an error. A CLI that reports nothing gives a run
with no figures: its spend is unknown, not zero.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace

REPORTS = ("claude-json", "codex-jsonl", "opencode-json", "aider-text")
SUMMARY_CHARS = 20000
BIGINT_MAX = 2**63 - 1
AIDER_LINE = re.compile(r"Tokens: ([\d.]+)([kKmM]?) sent, ([\d.]+)([kKmM]?) received\. Cost: \$([\d.]+) message, "
                        r"\$([\d.]+) session")


@dataclass(frozen=True)
class Spend:
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    turns: int | None = None
    session_id: str | None = None
    summary: str | None = None  # the CLI's summary as it printed it (JSON), cut to SUMMARY_CHARS


def _count(value) -> int | None:
    """A token or turn count: a non-negative integer within BIGINT, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if 0 <= value <= BIGINT_MAX and value == int(value) else None


def _money(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _text(value) -> str | None:
    return value[:200] if isinstance(value, str) and value.isprintable() else None


def _sum(values) -> int | None:
    """The sum of the counts that were given (None if none was), within BIGINT."""
    given = [v for v in values if v is not None]
    return _count(sum(given)) if given else None


def _objects(stdout: str) -> list[dict]:
    """The JSON objects among stdout's lines (other lines are the CLI's text, ignored)."""
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _claude(stdout: str) -> Spend:
    results = [o for o in _objects(stdout) if o.get("type") == "result"]
    if not results:
        return Spend()
    result = results[-1]
    usage = _dict(result.get("usage"))
    inputs = [_count(usage.get(key)) for key in ("input_tokens", "cache_creation_input_tokens",
                                                 "cache_read_input_tokens")]
    return Spend(_money(result.get("total_cost_usd")), _sum(inputs), _count(usage.get("output_tokens")),
                 _count(result.get("num_turns")), _text(result.get("session_id")),
                 json.dumps(result)[:SUMMARY_CHARS])


def _codex(stdout: str) -> Spend:
    events = _objects(stdout)
    turns = [_dict(e.get("usage")) for e in events if e.get("type") == "turn.completed"]
    thread = next((e.get("thread_id") for e in events if e.get("type") == "thread.started"), None)
    if not turns and thread is None:
        return Spend()
    spend = Spend(None, _sum(_count(u.get("input_tokens")) for u in turns),
                  _sum(_count(u.get("output_tokens")) for u in turns), len(turns), _text(thread))
    summary = {"thread_id": spend.session_id, "turns": spend.turns, "input_tokens": spend.input_tokens,
               "output_tokens": spend.output_tokens}
    return replace(spend, summary=json.dumps(summary))


def _opencode(stdout: str) -> Spend:
    events = _objects(stdout)
    steps = [_dict(e.get("part")) for e in events if e.get("type") == "step_finish"]
    session = next((e.get("sessionID") for e in events if isinstance(e.get("sessionID"), str)), None)
    if not steps:
        return Spend(session_id=_text(session))
    tokens = [_dict(step.get("tokens")) for step in steps]
    inputs = [_sum([_count(t.get("input")), _count(_dict(t.get("cache")).get("read")),
                    _count(_dict(t.get("cache")).get("write"))]) for t in tokens]
    outputs = [_sum([_count(t.get("output")), _count(t.get("reasoning"))]) for t in tokens]
    costs = [_money(step.get("cost")) for step in steps]
    cost = sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None
    spend = Spend(cost, _sum(inputs), _sum(outputs), len(steps), _text(session))
    summary = {"session_id": spend.session_id, "steps": spend.turns, "cost": spend.cost_usd,
               "input_tokens": spend.input_tokens, "output_tokens": spend.output_tokens}
    return replace(spend, summary=json.dumps(summary))


def _scaled(number: str, suffix: str) -> int | None:
    try:
        value = float(number) * {"": 1, "k": 1e3, "m": 1e6}[suffix.lower()]
    except ValueError:
        return None
    return _count(round(value))


def _aider(stdout: str) -> Spend:
    lines = AIDER_LINE.findall(stdout)
    if not lines:
        return Spend()
    sent = _sum(_scaled(n, s) for n, s, _, _, _, _ in lines)
    received = _sum(_scaled(n, s) for _, _, n, s, _, _ in lines)
    session_cost = _money(float(lines[-1][5]))
    summary = {"messages": len(lines), "cost": session_cost, "input_tokens": sent, "output_tokens": received}
    return Spend(session_cost, sent, received, len(lines), None, json.dumps(summary))


READERS = {"claude-json": _claude, "codex-jsonl": _codex, "opencode-json": _opencode, "aider-text": _aider}


def read_spend(report: str | None, stdout: str) -> Spend:
    """What the CLI's output in format `report` says the run cost (no format: nothing known)."""
    return READERS[report](stdout) if report else Spend()
