"""Reading what a CLI says a run cost (farm/coding_agents/agent_spend.py): each preset's format as the CLI prints it,
and the
agent's output treated as data, never trusted to be well formed."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.campaign_file.config import CommandAgentConfig
from farm.coding_agents import agents
from farm.coding_agents.agent_spend import BIGINT_MAX, REPORTS, Spend, read_spend

CLAUDE = json.dumps({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 5120, "num_turns": 4,
                     "result": "Done.", "session_id": "8f3c", "total_cost_usd": 0.0731,
                     "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 9000,
                               "output_tokens": 410}})
CODEX = "\n".join(json.dumps(event) for event in [
    {"type": "thread.started", "thread_id": "0199a213-81c0"}, {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "Looking."}},
    {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}},
    {"type": "turn.completed", "usage": {"input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 78}}])
OPENCODE = "\n".join(json.dumps(event) for event in [
    {"type": "step_start", "timestamp": 1, "sessionID": "ses_49", "part": {"type": "step-start"}},
    {"type": "text", "timestamp": 2, "sessionID": "ses_49", "part": {"type": "text", "text": "ok"}},
    {"type": "step_finish", "timestamp": 3, "sessionID": "ses_49",
     "part": {"type": "step-finish", "cost": 0.01, "tokens": {"input": 100, "output": 20, "reasoning": 5,
                                                             "cache": {"read": 900, "write": 0}}}},
    {"type": "step_finish", "timestamp": 4, "sessionID": "ses_49",
     "part": {"type": "step-finish", "cost": 0.02, "tokens": {"input": 50, "output": 10, "reasoning": 0,
                                                             "cache": {"read": 0, "write": 10}}}}])
AIDER = """Aider v0.86.1
Tokens: 2.3k sent, 150 received. Cost: $0.01 message, $0.01 session.
Applied edit to prog.py
Tokens: 1.2M sent, 1k received. Cost: $0.50 message, $0.51 session.
"""


@pytest.mark.parametrize("report, stdout, expected", [
    ("claude-json", "some text\n" + CLAUDE, (0.0731, 12012, 410, 4, "8f3c")),
    ("codex-jsonl", CODEX, (None, 25763, 200, 2, "0199a213-81c0")),
    ("opencode-json", OPENCODE, (0.03, 1060, 35, 2, "ses_49")),
    ("aider-text", AIDER, (0.51, 1202300, 1150, 2, None)),
])
def test_each_format_as_its_cli_prints_it(report, stdout, expected):
    spend = read_spend(report, stdout)
    assert (spend.cost_usd, spend.input_tokens, spend.output_tokens, spend.turns, spend.session_id) == \
        pytest.approx(expected)
    assert json.loads(spend.summary)  # the summary kept is JSON


def test_each_preset_asks_its_cli_for_the_format_it_reads():
    flags = {"claude-code": "--output-format json", "codex": "--json", "opencode": "--format json", "aider": ""}
    for preset, flag in flags.items():
        agent = CommandAgentConfig(preset=preset)
        assert agents.report_format(agent) in REPORTS and flag in agents.command_line(agent)
    assert agents.report_format(CommandAgentConfig(command="my-agent")) is None
    assert agents.report_format(CommandAgentConfig(command="claude -p x --output-format json",
                                                   report="claude-json")) == "claude-json"
    assert agents.report_format(CommandAgentConfig(preset="codex", report="none")) is None


@pytest.mark.parametrize("stdout", [
    "", "Not logged in · Please run /login", '{"type": "result"}', '{"type": "result", "usage": [1, 2]}',
    '{"type": "result", "total_cost_usd": -3, "num_turns": 1e300, "usage": {"output_tokens": "many"}}',
    '{"type": "result", "total_cost_usd": NaN, "usage": {"input_tokens": true}}',
    '{"type": "result", "session_id": "a\\u0000b", "usage": {"output_tokens": 99999999999999999999999}}',
    "[" * 100000, '{"type": "result"' + "}" * 3])
def test_output_that_says_nothing_usable_gives_no_figures_and_no_error(stdout):
    for report in REPORTS:
        spend = read_spend(report, stdout)
        assert (spend.cost_usd, spend.input_tokens, spend.output_tokens, spend.session_id) == (None, None, None, None)


@given(st.text(max_size=400))
def test_any_text_is_read_without_an_error_and_within_the_stores_types(text):
    for report in REPORTS:
        spend = read_spend(report, text)
        for count in (spend.input_tokens, spend.output_tokens, spend.turns):
            assert count is None or 0 <= count <= BIGINT_MAX
        assert spend.cost_usd is None or spend.cost_usd >= 0


def test_no_format_knows_nothing():
    assert read_spend(None, CLAUDE) == Spend()
