import pytest

from farm.errors import ProtocolError
from farm.protocol import parse_output


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
