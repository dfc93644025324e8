"""Bad input is refused with one line that names the field and says what to do, never a traceback.

Campaign files go through `farm validate` (exit 2, one `file: field.path: message` line per problem);
benchmark output goes through the protocol (a one-line ProtocolError, which the pipeline records as `crash`).
"""
import copy
import json
import pathlib
import re
import subprocess

import pytest
import yaml
from click.testing import CliRunner

import cpp_fixture
import farm.cli
from cpp_fixture import FixtureError
from farm.campaign_file.config import BenchConfig, load_config
from farm.campaign_file.knobs import KnobError
from farm.cli import main
from farm.errors import ConfigError, ProtocolError, TargetError
from farm.experiment.protocol import parse_output
from worktrees import WorktreeError

DELETE = object()

BASE = {
    "campaign": "t",
    "target": {"repo": "repo", "base_ref": "main"},
    "workdir": "work",
    "workers": {"count": 1},
    "phases": {"build": {"command": "true"}, "guard": {"command": "true"}, "bench": {"command": "true"}},
    "strategies": [{"name": "s", "hypotheses": [{"id": "h1", "patch": "h1.patch"}]}],
}

MANIFEST = {"hypotheses": [
    {"id": "p1", "category": "micro-opt", "description": "one", "rework": "p1_fix"},
    {"id": "p1_fix", "category": "micro-opt", "description": "one, repaired"},
    {"id": "p2", "description": "two", "predecessor": "p1", "expected": {"outcome": "keep"}},
], "combined": ["p1"]}


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def campaign(tmp_path):
    """A campaign directory that validates: a git repo, a patch, a pack; returns the config path."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.txt").write_text("x\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (tmp_path / "h1.patch").write_text("")
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "manifest.yaml").write_text(yaml.safe_dump(MANIFEST))
    for hypothesis_id in ("p1", "p1_fix", "p2"):
        (pack / f"{hypothesis_id}.patch").write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def edited(data: dict, changes: dict) -> dict:
    """A copy of `data` with `{"a.0.b": value}` set (DELETE removes the key)."""
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        node = data
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)  # cases share their values
    return data


def validate(path: pathlib.Path):
    """`farm validate PATH`: (exit code, stderr lines, all output)."""
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr.splitlines(), result.output


PACK = {"strategies": [{"name": "p", "pack": {"dir": "pack"}}]}

# (case, changes to BASE, what the single error line contains)
CONFIG_CASES = [
    ("campaign name", {"campaign": "bad name!"}, "campaign: String should match pattern"),
    ("unknown key", {"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ("loader field in file", {"source_dir": "/x"}, "source_dir: set by the loader"),
    ("target both", {"target": {"repo": "repo", "fixture": True}}, "target: Value error, give exactly one"),
    ("target neither", {"target": {"base_ref": "main"}}, "target: Value error, give exactly one"),
    ("target.repo type", {"target.repo": ["repo"]}, "target.repo: Input should be a valid string"),
    ("target.repo missing", {"target.repo": "nowhere"}, "target.repo: "),
    ("target.repo not git", {"target.repo": "pack"}, "target.repo: "),
    ("target.repo is a file", {"target.repo": "h1.patch"}, "target.repo: "),
    ("target.base_ref unknown", {"target.base_ref": "nope"}, "target.base_ref: 'nope' names no commit"),
    ("target.base_ref empty", {"target.base_ref": ""}, "target.base_ref: "),
    ("workdir is a file", {"workdir": "h1.patch"}, "workdir: "),
    ("workers.count zero", {"workers.count": 0}, "workers.count: Input should be greater than or equal to 1"),
    ("workers.count text", {"workers.count": "two"}, "workers.count: Input should be a valid integer"),
    ("workers.count too many", {"workers.count": 10000}, "workers: 10000 worker(s)"),
    ("workers.cpus_per_worker too many", {"workers.count": DELETE, "workers.cpus_per_worker": 10000},
     "workers: 0 worker(s) x 10000 CPU(s) do not fit"),
    ("workers.cpu_sets overlap", {"workers.cpu_sets": [[0], [0]]}, "workers.cpu_sets: Value error, CPU sets must "
                                                                    "be disjoint"),
    ("workers.cpu_sets empty set", {"workers.cpu_sets": [[]]}, "workers.cpu_sets: Value error, every CPU set"),
    ("workers.cpu_sets absent CPU", {"workers.cpu_sets": [[100000]]}, "workers.cpu_sets: CPU(s) [100000] are not "
                                                                       "available here"),
    ("workers.cpu_sets negative CPU", {"workers.cpu_sets": [[-1]]}, "workers.cpu_sets: CPU(s) [-1] are not"),
    ("workers.cpu_sets text", {"workers.cpu_sets": "0,1"}, "workers.cpu_sets: Input should be a valid list"),
    ("measurement.mode", {"measurement": {"mode": "sometimes"}}, "measurement.mode: Input should be 'exclusive'"),
    ("phases missing", {"phases": DELETE}, "phases: Field required"),
    ("phases.build.command missing", {"phases.build": {"timeout": 5}}, "phases.build.command: Field required"),
    ("phases.build.timeout negative", {"phases.build.timeout": -1}, "phases.build.timeout: Input should be greater"),
    ("phases.guard.timeout zero", {"phases.guard.timeout": 0}, "phases.guard.timeout: Input should be greater"),
    ("phases.bench.timeout text", {"phases.bench.timeout": "soon"}, "phases.bench.timeout: Input should be a valid"),
    ("phases.guard unknown key", {"phases.guard.retries": 3}, "phases.guard.retries: Extra inputs"),
    ("phases.bench.protocol", {"phases.bench.protocol": "xml"}, "phases.bench.protocol: Input should be 'jsonl'"),
    ("phases.bench.pattern bad regex", {"phases.bench.pattern": "(unclosed"}, "phases.bench.pattern: Value error, "
                                                                              "not a regular expression"),
    ("phases.bench.pattern no groups", {"phases.bench.pattern": r"^(\w+): (\S+)$"},
     "phases.bench.pattern: Value error, the pattern needs named groups"),
    ("phases.build.artifacts type", {"phases.build.artifacts": "build/*.so"}, "phases.build.artifacts: Input should "
                                                                              "be a valid list"),
    ("benchmarks type", {"benchmarks": ["a"]}, "benchmarks: Input should be a valid dictionary"),
    ("benchmarks direction", {"benchmarks": {"a": {"direction": "up"}}}, "benchmarks.a.direction: Input should be"),
    ("benchmarks min_effect negative", {"benchmarks": {"a": {"min_effect": -0.1}}}, "benchmarks.a.min_effect: "),
    ("protected_paths type", {"protected_paths": "bench.py"}, "protected_paths: Input should be a valid list"),
    ("acceptance.alpha", {"acceptance": {"alpha": 0.7}}, "acceptance.alpha: Input should be less than 0.5"),
    ("acceptance.beta text", {"acceptance": {"beta": "x"}}, "acceptance.beta: Input should be a valid number"),
    ("acceptance.min_effect", {"acceptance": {"min_effect": 1}}, "acceptance.min_effect: Input should be less"),
    ("acceptance.aa_blocks", {"acceptance": {"aa_blocks": 2}}, "acceptance.aa_blocks: Input should be greater"),
    ("acceptance.canary_every", {"acceptance": {"canary_every": 0}}, "acceptance.canary_every: Input should be"),
    ("acceptance.min_blocks > max", {"acceptance": {"min_blocks": 10, "max_blocks": 5}},
     "acceptance: Value error, min_blocks (10) is larger than max_blocks (5)"),
    ("acceptance.looks decreasing", {"acceptance": {"looks": [5, 4]}}, "acceptance: Value error, looks must be "
                                                                       "increasing"),
    ("acceptance.extension_looks early", {"acceptance": {"extension_looks": [10]}}, "looks must be increasing"),
    ("acceptance.rework_tries", {"acceptance": {"rework_tries": -1}}, "acceptance.rework_tries: Input should be"),
    ("acceptance unknown key", {"acceptance": {"blokcs": 3}}, "acceptance.blokcs: Extra inputs"),
    ("merge.enabled", {"merge": {"enabled": "perhaps"}}, "merge.enabled: Input should be a valid boolean"),
    ("strategies empty", {"strategies": []}, "strategies: List should have at least 1 item"),
    ("strategies missing", {"strategies": DELETE}, "strategies: Field required"),
    ("strategies duplicate names", {"strategies": BASE["strategies"] * 2}, "strategy names must be unique"),
    ("strategy name", {"strategies.0.name": "a b"}, "strategies.0.name: String should match pattern"),
    ("strategy agent", {"strategies.0.agent": "llm"},
     "strategies.0.agent: Input should be 'patch', 'command', 'knobs' or 'refs'"),
    ("strategy without hypotheses", {"strategies.0.hypotheses": DELETE}, "strategies.0: Value error, give inline "
                                                                         "`hypotheses`, a `pack` directory, `refs`"),
    ("hypothesis id", {"strategies.0.hypotheses.0.id": "../x"}, "strategies.0.hypotheses.0.id: String should match"),
    ("hypothesis without patch", {"strategies.0.hypotheses.0.patch": DELETE},
     "strategies.0: Value error, the patch agent needs a `patch` for every hypothesis; missing for ['h1']"),
    ("command agent without command", {"strategies.0.agent": "command"},
     "strategies.0: Value error, agent `command` needs `command: {preset: ...}`"),
    ("command agent with preset and command", {"strategies.0.agent": "command",
                                               "strategies.0.command": {"preset": "codex", "command": "x"}},
     "strategies.0.command: Value error, give exactly one of `preset` or `command`"),
    ("unknown agent preset", {"strategies.0.agent": "command", "strategies.0.command": {"preset": "gpt"}},
     "strategies.0.command.preset: Input should be 'claude-code', 'codex', 'aider' or 'opencode'"),
    ("open hypotheses for patches", {"strategies.0.open": 3},
     "strategies.0: Value error, `open` and `planner` hypotheses are texts: they need a coding agent"),
    ("knob without values", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "opt", "write": {"env": "OPT"}}]}}},
     "strategies.0.knobs.params.0: Value error, give exactly one of `values` or `range`"),
    ("knob pattern without a group", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "opt", "values": [1], "write": {"file": "a.h", "pattern": "x"}}]}}},
     "strategies.0.knobs.params.0.write: Value error, pattern: needs exactly one group"),
    ("knob grid too large", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "a", "range": {"min": 1, "max": 100, "step": 1}, "write": {"env": "A"}},
        {"name": "b", "range": {"min": 1, "max": 100, "step": 1}, "write": {"env": "B"}}]}}},
     "strategies.0.knobs: Value error, the grid has 10000 combinations"),
    ("knob file outside the checkout", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "n", "values": [1], "write": {"file": "../ref/prog.py", "pattern": "N = (\\d+)"}}]}}},
     "strategies.0.knobs.params.0.write.file: Value error, '../ref/prog.py' is not a file inside the checkout"),
    ("knob file absolute", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "n", "values": [1], "write": {"file": "/etc/hosts", "pattern": "(x)"}}]}}},
     "strategies.0.knobs.params.0.write.file: Value error, '/etc/hosts' is not a file inside the checkout"),
    ("knob value with a newline", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "opt", "values": ["-O2", "-O3\nLD_PRELOAD=/tmp/evil.so"], "write": {"flags": "CXXFLAGS"}}]}}},
     "strategies.0.knobs.params.0.values: Value error, the value '-O3\\nLD_PRELOAD=/tmp/evil.so' holds a line break"),
    ("knob setting a variable of the farm", {"strategies.0": {"name": "k", "knobs": {"params": [
        {"name": "path", "values": ["/tmp/bin"], "write": {"env": "PATH"}}]}}},
     "strategies.0.knobs.params.0.write: Value error, the farm sets PATH for every phase"),
    ("refs with patches", {"strategies.0.refs": {"commits": ["HEAD"]}},
     "strategies.0: Value error, a `refs` strategy has no other hypotheses"),
    ("refs without a source", {"strategies.0": {"name": "r", "refs": {"category": "x"}}},
     "strategies.0.refs: Value error, give a `range`, `commits` or `branches`"),
    ("planner for patches", {"strategies.0.planner": {"command": "plan"}},
     "strategies.0: Value error, `open` and `planner` hypotheses are texts"),
    ("hypothesis patch missing", {"strategies.0.hypotheses.0.patch": "gone.patch"},
     "strategies.s.hypotheses.h1.patch: cannot read"),
    ("hypothesis patch is a directory", {"strategies.0.hypotheses.0.patch": "pack"},
     "strategies.s.hypotheses.h1.patch: cannot read"),
    ("hypothesis patch not UTF-8", {"strategies.0.hypotheses.0.patch": "latin1.patch"},
     "strategies.s.hypotheses.h1.patch: "),
    ("hypothesis rework missing", {"strategies.0.hypotheses.0.rework": ["gone.patch"]},
     "strategies.s.hypotheses.h1.rework: cannot read"),
    ("hypothesis ids duplicate", {"strategies.0.hypotheses": [{"id": "h1", "patch": "h1.patch"}] * 2},
     "hypothesis ids must be unique across strategies: ['h1']"),
    ("hypothesis after nothing", {"strategies.0.hypotheses.0.after": "h0"},
     "strategies.s.hypotheses.h1.after: no hypothesis 'h0'"),
    ("hypothesis after itself", {"strategies.0.hypotheses.0.after": "h1"},
     "strategies.s.hypotheses.h1.after: the hypotheses wait on each other (h1 -> h1)"),
    ("hypotheses after each other", {"strategies.0.hypotheses": [{"id": "a", "patch": "h1.patch", "after": "b"},
                                                                 {"id": "b", "patch": "h1.patch", "after": "a"}]},
     "the hypotheses wait on each other (a -> b -> a)"),
    ("pack dir missing", {**PACK, "strategies.0.pack.dir": "nowhere"}, "strategies.p.pack.dir: cannot read"),
    ("pack ids unknown", {**PACK, "strategies.0.pack.ids": ["p9"]}, "strategies.p.pack.ids: unknown id(s) ['p9']"),
    ("pack predecessor not chosen", {**PACK, "strategies.0.pack.ids": ["p2"]},
     "strategies.p.hypotheses.p2.after: no hypothesis 'p1'"),
    ("pack unknown key", {**PACK, "strategies.0.pack.path": "x"}, "strategies.0.pack.path: Extra inputs"),
]


@pytest.mark.parametrize("changes, words", [case[1:] for case in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_campaign_field_is_one_line_naming_it(campaign, changes, words):
    (campaign.parent / "latin1.patch").write_bytes("caf\xe9\n".encode("latin-1"))
    campaign.write_text(yaml.safe_dump(edited(BASE, changes)))  # in order: `strategies`, then `strategies.0...`
    code, lines, output = validate(campaign)
    assert code == 2, output
    assert len(lines) == 1, output
    assert lines[0].startswith(f"{campaign}: ") and words in lines[0], output


# (case, manifest text or a function of the good manifest, field, what the line contains)
MANIFEST_CASES = [
    ("not UTF-8", b"hypotheses:\n  - id: caf\xe9\n", "", "not UTF-8 text"),
    ("invalid YAML", "hypotheses: [unclosed\n", "", "not valid YAML: line"),
    ("empty", "", "(top level)", "expected a mapping with a `hypotheses` list, got an empty file"),
    ("a list", "- id: p1\n", "(top level)", "expected a mapping with a `hypotheses` list, got a list"),
    ("no hypotheses key", "combined: [p1]\n", "hypotheses", "Field required"),
    ("hypotheses not a list", "hypotheses: {id: p1}\n", "hypotheses", "Input should be a valid list"),
    ("hypotheses empty", "hypotheses: []\n", "hypotheses", "List should have at least 1 item"),
    ("entry not a mapping", "hypotheses: [p1]\n", "hypotheses.0", "Input should be a valid dictionary"),
    ("entry without id", lambda m: edited(m, {"hypotheses.1.id": DELETE}), "hypotheses.1.id", "Field required"),
    ("id pattern", lambda m: edited(m, {"hypotheses.2.id": "../p2"}), "hypotheses.2.id", "String should match"),
    ("id not text", lambda m: edited(m, {"hypotheses.2.id": ["p2"]}), "hypotheses.2.id", "valid string"),
    ("category not text", lambda m: edited(m, {"hypotheses.2.category": 3}), "hypotheses.2.category",
     "valid string"),
    ("duplicate id", lambda m: edited(m, {"hypotheses.2.id": "p1"}), "hypotheses.2.id", "'p1' is listed twice"),
    ("rework names nothing", lambda m: edited(m, {"hypotheses.0.rework": "p9"}), "hypotheses.0.rework",
     "no hypothesis 'p9' in this manifest"),
    ("predecessor names nothing", lambda m: edited(m, {"hypotheses.2.predecessor": "p9"}),
     "hypotheses.2.predecessor", "no hypothesis 'p9' in this manifest"),
    ("patch missing", "remove p2.patch", "hypotheses.2.id", "no patch file p2.patch beside the manifest"),
    ("rework patch missing", "remove p1_fix.patch", "hypotheses.1.id", "no patch file p1_fix.patch"),
]


@pytest.mark.parametrize("manifest, field, words", [case[1:] for case in MANIFEST_CASES],
                         ids=[case[0] for case in MANIFEST_CASES])
def test_bad_pack_manifest_is_one_line_naming_the_manifest(campaign, manifest, field, words):
    campaign.write_text(yaml.safe_dump(edited(BASE, PACK)))
    manifest_path = campaign.parent / "pack" / "manifest.yaml"
    if callable(manifest):
        manifest_path.write_text(yaml.safe_dump(manifest(MANIFEST)))
    elif isinstance(manifest, bytes):
        manifest_path.write_bytes(manifest)
    elif manifest.startswith("remove "):
        (manifest_path.parent / manifest.split()[1]).unlink()
    else:
        manifest_path.write_text(manifest)
    code, lines, output = validate(campaign)
    assert code == 2, output
    assert len(lines) == 1, output
    assert "Traceback" not in output
    if "UTF-8" in words:  # unreadable as text: reported where the config points at the pack
        assert lines[0].startswith(f"{campaign}: strategies.p.pack.dir: ") and words in lines[0], output
    else:
        assert lines[0].startswith(f"{manifest_path}: {field}") and words in lines[0], output


def test_good_pack_and_inline_hypotheses_validate_with_base_commit_and_cpu_sets(campaign):
    campaign.write_text(yaml.safe_dump(edited(BASE, {"strategies": BASE["strategies"] + PACK["strategies"]})))
    code, lines, output = validate(campaign)
    base = subprocess.run(["git", "rev-parse", "main"], cwd=campaign.parent / "repo", capture_output=True,
                          text=True).stdout.strip()
    assert code == 0, output
    # p1_fix is p1's rework patch, not a hypothesis of its own
    assert f"3 hypotheses; base main = {base[:12]}; CPU sets [[" in output


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "(top level): not UTF-8 text"),
    (b"", "(top level): expected a mapping of campaign fields, got an empty file"),
    (b"- campaign: t\n", "(top level): expected a mapping of campaign fields, got a list"),
    (b"campaign: [unclosed\n", "not valid YAML: line 2"),
    (b"campaign: !!python/object:os.system x\n", "not valid YAML"),
    (b"1: x\n", "1: Keys should be strings"),
])
def test_campaign_file_that_is_not_a_yaml_mapping_is_one_line(tmp_path, content, words):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    code, lines, output = validate(path)
    assert code == 2 and all(line.startswith(f"{path}: ") for line in lines), output
    assert any(words in line for line in lines), output
    assert len(lines) == 1 or words.startswith("1:")  # `1: x` also lacks the required fields: a line each
    with pytest.raises(ConfigError):
        load_config(path)


def test_several_problems_are_one_line_each(campaign):
    data = edited(BASE, {"target.base_ref": "nope", "workers.cpu_sets": [[100000]], "workers.count": DELETE,
                         "strategies.0.hypotheses.0.patch": "gone.patch"})
    campaign.write_text(yaml.safe_dump(data))
    code, lines, output = validate(campaign)
    assert code == 2 and len(lines) == 3, output
    assert all(line.startswith(f"{campaign}: ") for line in lines)
    assert [line.split(": ")[1] for line in lines] == ["strategies.s.hypotheses.h1.patch", "target.base_ref",
                                                        "workers.cpu_sets"]


# --- the fixture target ---------------------------------------------------------------------------------------

def fixture_campaign(campaign):
    campaign.write_text(yaml.safe_dump(edited(BASE, {"target": {"fixture": True}})))
    return campaign.parent / "work" / "target"


def test_fixture_into_a_non_empty_non_git_target_is_refused_by_validate_and_run(campaign):
    target = fixture_campaign(campaign)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine\n")
    code, lines, output = validate(campaign)
    assert code == 2 and len(lines) == 1, output
    assert lines[0] == (f"{campaign}: target.fixture: {target} exists and is not a git repository, so the fixture "
                        f"cannot be materialised there; remove it or give another workdir")
    # `farm run` makes the same check before it starts Ray (it used to end in cpp_fixture.FixtureError)
    result = CliRunner().invoke(main, ["run", str(campaign)])
    assert result.exit_code == 2 and result.stderr.splitlines() == lines, result.output
    assert (target / "notes.txt").read_text() == "mine\n" and not (target / ".git").exists()


def test_fixture_target_that_is_a_file_is_refused(campaign):
    target = fixture_campaign(campaign)
    target.parent.mkdir()
    target.write_text("x")
    code, lines, output = validate(campaign)
    assert code == 2 and len(lines) == 1 and "target.fixture: " in lines[0], output


def test_fixture_validates_without_materialising_and_gives_the_run_s_base_commit(campaign, tmp_path):
    target = fixture_campaign(campaign)
    code, lines, output = validate(campaign)
    assert code == 0, output
    assert not target.exists()  # validate changes nothing
    fresh = cpp_fixture.init_repo(tmp_path / "fx")
    base = subprocess.run(["git", "rev-parse", "main"], cwd=fresh, capture_output=True, text=True).stdout.strip()
    assert f"base main = {base[:12]}" in output
    campaign.write_text(campaign.read_text().replace("fixture: true", "fixture: true\n  base_ref: nope"))
    code, lines, output = validate(campaign)
    assert code == 2 and "target.base_ref: 'nope' names no commit" in lines[0], output


def test_prepare_target_turns_fixture_errors_into_one_line_target_errors(campaign, tmp_path, monkeypatch):
    from farm.campaign_file.target import prepare_target

    fixture_campaign(campaign)
    config = load_config(campaign)
    (tmp_path / "w1" / "target").mkdir(parents=True)
    (tmp_path / "w1" / "target" / "x").write_text("x")
    with pytest.raises(TargetError, match=r"^target\.fixture: .* remove it or give another workdir$"):
        prepare_target(config, tmp_path / "w1")

    def failing_init(dest):
        raise cpp_fixture.FixtureError("git init -q -b main failed in /x: fatal: one\nfatal: two")

    monkeypatch.setattr(cpp_fixture, "init_repo", failing_init)
    with pytest.raises(TargetError) as info:
        prepare_target(config, tmp_path / "w2")
    assert "\n" not in str(info.value) and str(info.value).startswith("target.fixture: cannot materialise")
    from scheduler.runtime import coordinator  # the coordinator uses this very function
    assert coordinator.prepare_target is prepare_target


# --- benchmark output -----------------------------------------------------------------------------------------

DEFAULT_PATTERN = BenchConfig(command="true").pattern


def jsonl(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


# (case, protocol, output, required benchmarks, what the error says)
OUTPUT_CASES = [
    ("empty", "jsonl", "", [], "no benchmark values"),
    ("garbage", "jsonl", "Segmentation fault\n\x00\x01", [], "no benchmark values"),
    ("only a JSON list", "jsonl", jsonl([{"name": "a", "value": 1}]), [], "no benchmark values"),
    ("not JSON", "jsonl", "{name: a, value: 1}\n", [], "not JSON"),
    ("JSON then text", "jsonl", '{"name": "a", "value": 1} ok\n', [], "not JSON"),
    ("integer too long", "jsonl", '{"name": "a", "value": ' + "9" * 5000 + "}\n", [], "not JSON"),
    ("nested too deep", "jsonl", '{"a": ' * 100000 + "\n", [], "not JSON"),
    ("no value", "jsonl", jsonl({"name": "a"}), [], "without `name` and `value`"),
    ("name not text", "jsonl", jsonl({"name": ["a"], "value": 1}), [], "benchmark name ['a'] is not"),
    ("name empty", "jsonl", jsonl({"name": "", "value": 1}), [], "benchmark name '' is not"),
    ("value NaN", "jsonl", '{"name": "a", "value": NaN}\n', [], "not a positive finite number"),
    ("value Infinity", "jsonl", '{"name": "a", "value": Infinity}\n', [], "not a positive finite number"),
    ("value negative", "jsonl", jsonl({"name": "a", "value": -1}), [], "not a positive finite number"),
    ("value zero", "jsonl", jsonl({"name": "a", "value": 0}), [], "not a positive finite number"),
    ("value text", "jsonl", jsonl({"name": "a", "value": "fast"}), [], "value 'fast' is not a number"),
    ("value null", "jsonl", jsonl({"name": "a", "value": None}), [], "value None is not a number"),
    ("value true", "jsonl", jsonl({"name": "a", "value": True}), [], "value True is not a number"),
    ("value list", "jsonl", jsonl({"name": "a", "value": [1]}), [], "value [1] is not a number"),
    ("value huge", "jsonl", jsonl({"name": "a", "value": 10 ** 400}), [], "is not a number"),
    ("unit not text", "jsonl", jsonl({"name": "a", "value": 1, "unit": 5}), [], "benchmark 'a': `unit` 5"),
    ("cpus text items", "jsonl", jsonl({"name": "x", "value": 1.0, "cpus": ["a"]}), [],
     "benchmark 'x': `cpus` ['a'] is not a list of CPU numbers"),
    ("cpus fractions", "jsonl", jsonl({"name": "x", "value": 1.0, "cpus": [1.5]}), [], "benchmark 'x': `cpus`"),
    ("cpus not a list", "jsonl", jsonl({"name": "x", "value": 1.0, "cpus": "0-3"}), [], "benchmark 'x': `cpus`"),
    ("cpus booleans", "jsonl", jsonl({"name": "x", "value": 1.0, "cpus": [True]}), [], "benchmark 'x': `cpus`"),
    ("cpus negative", "jsonl", jsonl({"name": "x", "value": 1.0, "cpus": [-1]}), [], "benchmark 'x': `cpus`"),
    ("pid text", "jsonl", jsonl({"name": "x", "value": 1.0, "pid": "7"}), [], "benchmark 'x': `pid` '7' is not"),
    ("pid fraction", "jsonl", jsonl({"name": "x", "value": 1.0, "pid": 1.5}), [], "benchmark 'x': `pid` 1.5"),
    ("duplicate name", "jsonl", jsonl({"name": "a", "value": 1}, {"name": "a", "value": 2}), [], "twice"),
    ("required missing", "jsonl", jsonl({"name": "a", "value": 1}), ["a", "b"], "['b'] missing"),
    ("regex: only key: text lines", "regex", "checksum_x: e21d38f0a1\nstatus: ok\n", [], "no benchmark values"),
    ("regex: negative", "regex", "kde: -0.5 s\n", [], "not a positive finite number"),
    ("regex: zero", "regex", "kde: 0\n", [], "not a positive finite number"),
    ("regex: overflow", "regex", "kde: 1e999 s\n", [], "not a positive finite number"),
    ("regex: duplicate", "regex", "kde: 1 s\nkde: 2 s\n", [], "twice"),
    ("regex: required missing", "regex", "kde: 1 s\n", ["kde", "loocv"], "['loocv'] missing"),
]


@pytest.mark.parametrize("protocol, output, required, words", [case[1:] for case in OUTPUT_CASES],
                         ids=[case[0] for case in OUTPUT_CASES])
def test_bad_benchmark_output_is_a_one_line_protocol_error(protocol, output, required, words):
    with pytest.raises(ProtocolError) as info:
        parse_output(output, protocol, DEFAULT_PATTERN, required)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("pattern, output, words", [
    (r"^(?P<name>\w+)?:\s*(?P<value>\S+)$", ": 1\n", "bench.pattern matched a line without a `name`"),
    (r"^(?P<name>\w+):\s*(?P<value>\d+)?.*$", "cs: e21d38f0a1\n", "value None is not a number"),
    (r"^(?P<name>\w+):\s*(?P<value>\S+)$", "cs: e21d38f0a1\n", "value 'e21d38f0a1' is not a number"),
])
def test_custom_regex_with_bad_matches_is_a_protocol_error(pattern, output, words):
    with pytest.raises(ProtocolError, match=re.escape(words)):
        parse_output(output, "regex", pattern, [])


@pytest.mark.parametrize("line", ["checksum_x: e21d38f0a1", "checksum: 21d38f0a1", "checksum: 12e5abc9",
                                  "status: ok", "note: 12 items processed in 3 s", "time: nan", "a: 1 2",
                                  "url: http://x:80", ""])
def test_default_regex_skips_key_text_lines(line):
    assert re.match(DEFAULT_PATTERN, line) is None
    readings = parse_output(f"{line}\nkde: 0.5 s\n", "regex", DEFAULT_PATTERN, ["kde"])
    assert [r.name for r in readings] == ["kde"]


@pytest.mark.parametrize("line, reading", [
    ("kde: 0.123 s", ("kde", 0.123, "s")),
    ("idw2d: 1.5e-3", ("idw2d", 1.5e-3, "")),
    ("gridsearch: 12 ms", ("gridsearch", 12.0, "ms")),
    ("gridsearch: 12ms", ("gridsearch", 12.0, "ms")),
    ("  fit.v2/x : +.5 ops/s  ", ("fit.v2/x", 0.5, "ops/s")),
    ("load: 3. %", ("load", 3.0, "%")),
    ("t: 2E+2 µs", ("t", 200.0, "µs")),
])
def test_default_regex_reads_benchmark_lines(line, reading):
    (found,) = parse_output(f"checksum_x: e21d38f0a1\n{line}\n", "regex", DEFAULT_PATTERN, [])
    assert (found.name, found.value, found.unit) == reading


def test_jsonl_with_good_cpus_and_pid_is_read():
    (found,) = parse_output(jsonl({"name": "x", "value": 1.0, "cpus": [0, 3], "pid": 12, "unit": None}), "jsonl",
                            "", ["x"])
    assert (found.cpus, found.pid, found.unit) == ((0, 3), 12, "")


# --- the store --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["status"], ["query", "SELECT 1"]])
def test_a_duckdb_file_that_is_not_a_farm_store_is_one_line(tmp_path, command):
    import duckdb

    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t (x INTEGER)").close()
    result = CliRunner().invoke(main, [*command, "--db", str(other)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.splitlines() == [f"error: {other} is a DuckDB file but not a farm store (it has no farm "
                                          f"tables); pass the farm.duckdb of a campaign"]


@pytest.mark.parametrize("error", [WorktreeError("git update-ref farm/c/integrated: cannot lock ref"),
                                   FixtureError("/tmp/x is not empty; give a new directory"),
                                   KnobError("knob threads: the pattern matches nothing in CMakeLists.txt")])
def test_an_error_of_any_layer_reaches_the_user_as_one_line(monkeypatch, error):
    # On main a WorktreeError (git, from claim_branches or a save of the campaign) was a traceback.
    def fail(db):
        raise error
    monkeypatch.setattr(farm.cli, "_stores", fail)
    result = CliRunner().invoke(farm.cli.main, ["status"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output == f"error: {error}\n"
