import os
import pathlib
import sys
import textwrap

import pytest
from click.testing import CliRunner

from farm.campaign_file.config import load_config
from farm.cli import main
from farm.errors import ConfigError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MINIMAL = """
campaign: t
target: {repo: ., base_ref: main}
phases:
  build: {command: "true"}
  guard: {command: "true"}
  bench: {command: "true"}
strategies:
  - name: s
    hypotheses: [{id: h1, patch: h1.patch}]
"""


def write(tmp_path, text) -> pathlib.Path:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_minimal_config_loads_with_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.acceptance.schedule() == (3, 4, 5, 7, 9, 12, 15, 20, 25, 30) and config.merge.remeasure is True
    assert config.acceptance.regular_looks()[-1] == 20
    assert config.resolve("h1.patch") == tmp_path / "h1.patch"


def test_error_names_file_and_field_path(tmp_path):
    path = write(tmp_path, MINIMAL.replace("bench: {command: \"true\"}", "bench: {command: \"true\", timeout: -1}"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: phases.bench.timeout: Input should be greater than 0"


def test_unknown_field_is_rejected(tmp_path):
    path = write(tmp_path, MINIMAL + "acceptance: {blokcs: 3}\n")
    with pytest.raises(ConfigError, match=r"acceptance\.blokcs: Extra inputs are not permitted"):
        load_config(path)


def test_bad_yaml_is_one_line_with_position(tmp_path):
    path = write(tmp_path, "campaign: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid YAML: line") and "\n" not in message


def test_validate_cli_exit_2_and_one_line_per_problem(tmp_path):
    path = write(tmp_path, MINIMAL.replace("campaign: t", "campaign: 'bad name!'").replace("base_ref: main",
                                                                                           "base_ref: main, x: 1"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert any(line.startswith(f"{path}: campaign: String should match pattern") for line in lines)
    assert any(line.startswith(f"{path}: target.x: Extra inputs") for line in lines)


def test_validate_demo_config_and_schema_has_descriptions():
    result = CliRunner().invoke(main, ["validate", str(REPO_ROOT / "configs" / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "6 hypotheses" in result.output
    schema = CliRunner().invoke(main, ["schema"])
    assert schema.exit_code == 0 and '"description"' in schema.output


def test_the_cluster_config_validates_and_names_each_nodes_directory(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(REPO_ROOT / "configs" / "cluster.yaml"), "--workdir",
                                       str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "6 hypotheses" in result.output
    config = load_config(REPO_ROOT / "configs" / "cluster.yaml")
    assert config.workers.node_dir == "{tmp}/autoresearch-farm/{node}" and config.workers.count is None


def test_the_knob_config_validates_against_the_fixture_and_a_wrong_knob_file_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(REPO_ROOT / "configs" / "knobs.yaml"), "--workdir",
                                       str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "7 hypotheses" in result.output
    text = (REPO_ROOT / "configs" / "knobs.yaml").read_text()
    broken = tmp_path / "knobs.yaml"
    broken.write_text(text.replace("INTERP_OMP_SCHEDULE", "INTERP_SCHEDULE").replace(
        "file: knobs.cmake, pattern: '^set\\(INTERP_OPT", "file: knobs.txt, pattern: '^set\\(INTERP_OPT"))
    result = CliRunner().invoke(main, ["validate", str(broken), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{broken}: strategies.1.knobs.params.0.write: no file knobs.txt in main",
        f"{broken}: strategies.1.knobs.params.1.write: the pattern matches nothing in knobs.cmake of main"]


def test_the_agents_config_shows_the_command_lines_and_needs_claude(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:/usr/bin:/bin")  # git, no claude
    result = CliRunner().invoke(main, ["validate", str(REPO_ROOT / "configs" / "agents.yaml"), "--workdir",
                                       str(tmp_path / "w")])
    assert result.exit_code == 2 and "agent of claude: 'claude' not found on PATH" in result.output
    stand_ins = REPO_ROOT / "tests" / "agents" / "bin"
    monkeypatch.setenv("PATH", f"{stand_ins}:{os.path.dirname(sys.executable)}:/usr/bin:/bin")
    result = CliRunner().invoke(main, ["validate", str(REPO_ROOT / "configs" / "agents.yaml"), "--workdir",
                                       str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert 'agent of claude: claude -p "$(cat "$FARM_PROMPT_FILE")" --max-turns 40 --dangerously-skip-permissions ' \
        '--output-format json' in lines
    assert "planner of planned: python3 planners/claude_planner.py" in lines


def test_missing_patch_file_is_reported(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(write(tmp_path, MINIMAL))])
    assert result.exit_code == 2
    assert "strategies.s.hypotheses.h1.patch: cannot read" in result.output


def test_run_with_a_missing_repo_is_one_line_and_non_zero(tmp_path):
    # `farm run` makes the checks of `farm validate` before Ray starts: a config problem, exit 2.
    (tmp_path / "h1.patch").write_text("")
    path = write(tmp_path, MINIMAL.replace("repo: .", f"repo: {tmp_path / 'nowhere'}"))
    result = CliRunner().invoke(main, ["run", str(path), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert result.output.strip() == f"{path}: target.repo: {tmp_path / 'nowhere'} does not exist; give the path " \
                                    "of a git repository"


def test_measurement_mode_defaults_to_auto_and_is_checked(tmp_path):
    assert load_config(write(tmp_path, MINIMAL)).measurement.mode.value == "auto"
    assert load_config(write(tmp_path, MINIMAL + "measurement: {mode: exclusive}\n")).measurement.mode.value == \
        "exclusive"
    with pytest.raises(ConfigError, match=r"measurement\.mode: Input should be 'exclusive', 'parallel' or 'auto'"):
        load_config(write(tmp_path, MINIMAL + "measurement: {mode: sometimes}\n"))
    with pytest.raises(ConfigError, match=r"measurement\.lock: Extra inputs are not permitted"):
        load_config(write(tmp_path, MINIMAL + "measurement: {lock: true}\n"))


def test_commit_ids_that_yaml_reads_as_numbers_are_taken_as_written(tmp_path):
    # 6995621 is an integer to YAML, 7e76581 a float (inf), 0755123 an octal integer: each a commit id here.
    text = MINIMAL.replace("    hypotheses: [{id: h1, patch: h1.patch}]",
                           "    refs: {commits: [6995621, 7e76581, 0755123, abc1234], branches: [1234]}")
    refs = load_config(write(tmp_path, text)).strategies[0].refs
    assert refs.commits == ["6995621", "7e76581", "0755123", "abc1234"] and refs.branches == ["1234"]
    assert load_config(write(tmp_path, MINIMAL)).acceptance.min_blocks == 3  # numbers elsewhere stay numbers


def test_a_commit_id_given_as_a_number_in_code_is_refused_with_what_to_do():
    from farm.campaign_file.config import RefsConfig
    with pytest.raises(ValueError, match=r'6995621 is a number: quote a commit id or ref \("6995621"\)'):
        RefsConfig(commits=[6995621])
