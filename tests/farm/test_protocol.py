import pytest

from farm.errors import ProtocolError
from farm.experiment.protocol import parse_output


def test_jsonl_reads_values_cpus_and_ignores_log_lines():
    out = 'starting\n{"name": "a", "value": 0.5, "unit": "s", "cpus": [1], "pid": 7}\n{"name": "b", "value": 2}\n'
    readings = parse_output(out, "jsonl", "", ["a", "b"])
    assert [(r.name, r.value, r.cpus, r.pid) for r in readings] == [("a", 0.5, (1,), 7), ("b", 2.0, None, None)]


def test_regex_protocol():
    pattern = r"^(?P<name>\w+):\s*(?P<value>[0-9.]+)\s*(?P<unit>\w+)?$"
    readings = parse_output("fib: 1.25 ms\nnoise\n", "regex", pattern, ["fib"])
    assert (readings[0].name, readings[0].value, readings[0].unit) == ("fib", 1.25, "ms")


@pytest.mark.parametrize("out, words", [
    ("hello world\n", "no benchmark values"),
    ('{"name": "a", "value": "fast"}\n', "not a number"),
    ('{"name": "a", "value": -1}\n', "positive finite"),
    ('{"name": "a", "value": NaN}\n', "positive finite"),
    ('{"name": "a" "value": 1}\n', "not JSON"),
    ('{"name": "a", "value": 1}\n{"name": "a", "value": 1}\n', "twice"),
    ('{"name": "b", "value": 1}\n', "missing"),
])
def test_garbage_is_a_clear_protocol_error(out, words):
    with pytest.raises(ProtocolError, match=words):
        parse_output(out, "jsonl", "", ["a"])


# What the store cannot hold (farm/storage/schema.sql: VARCHAR is UTF-8, samples.pid and samples.cpus are INTEGER, 32
# bits):
# on main each was read, acknowledged with its block, and failed the store actor's next write and every one after.
@pytest.mark.parametrize("out, words", [
    ('{"name": "a", "value": 1.0, "unit": "\\ud800"}\n', r"`unit` '\\ud800' is not valid UTF-8 text"),
    ('{"name": "a\\udfff", "value": 1.0}\n', r"name 'a\\udfff' is not valid UTF-8 text"),
    ('{"name": "a", "value": 1.0, "unit": "s\\u0000"}\n', "contains a NUL character"),
    ('{"name": "a", "value": 1.0, "pid": 3000000000}\n', r"`pid` 3000000000 is not a process id \(1 to 2147483647\)"),
    ('{"name": "a", "value": 1.0, "cpus": [0, 3000000000]}\n', r"`cpus` \[0, 3000000000\] is not a list of CPU"),
])
def test_a_name_unit_pid_or_cpu_the_store_cannot_hold_is_a_one_line_protocol_error(out, words):
    with pytest.raises(ProtocolError, match=words) as caught:
        parse_output(out, "jsonl", "", ["a"])
    assert "\n" not in str(caught.value)
    str(caught.value).encode("utf-8")  # the reason itself is storable: the bad text is quoted as an escape


def test_the_largest_integers_the_store_holds_are_read():
    out = '{"name": "a", "value": 1.0, "pid": 2147483647, "cpus": [0, 2147483647]}\n'
    (reading,) = parse_output(out, "jsonl", "", ["a"])
    assert (reading.pid, reading.cpus) == (2**31 - 1, (0, 2**31 - 1))


@pytest.mark.parametrize("out, words", [
    ("fib\ud800: 1.25 ms\n", "name 'fib\\\\ud800' is not valid UTF-8 text"),
    ("fib: 1.25 m\0s\n", "unit 'm\\\\x00s' contains a NUL character"),
])
def test_the_regex_protocol_refuses_text_the_store_cannot_hold(out, words):
    pattern = r"^(?P<name>\S+):\s*(?P<value>[0-9.]+)\s*(?P<unit>\S+)?$"
    with pytest.raises(ProtocolError, match=words):
        parse_output(out, "regex", pattern, [])
