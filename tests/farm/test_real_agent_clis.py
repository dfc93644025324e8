"""The presets against the real coding-agent CLIs, installed here from the registries as a user would (Claude
Code, Codex and OpenCode from npm into a temporary prefix, Aider from PyPI into its own venv).

There are no credentials here, so each CLI stops at its login or network step. The rendered command line of
each preset runs as the farm runs it (farm/experiment/runner.py, in the agent sandbox of farm/node/sandbox.py, as root
here,
with the preset's sandbox-only environment) in a scratch repository: it must get past its option parsing,
never stop at an unknown option or a usage error. A CLI that renames a flag in a new release fails here, not in
every user's campaign. The README's table of rendered command lines is checked against the presets, and
`farm validate` says in one line, within 30 s, that the real `claude` is not logged in.
"""
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from farm.campaign_file.config import CommandAgentConfig
from farm.cli import main
from farm.coding_agents import agents
from farm.coding_agents.preflight import PROVIDER_KEYS
from farm.errors import PhaseError, PhaseTimeout
from farm.experiment.runner import run_command
from farm.node import sandbox
from tests.scheduler.tiny_repo import config_dict, make_repo

pytestmark = pytest.mark.slow
NPM_PACKAGES = ["@anthropic-ai/claude-code", "@openai/codex", "opencode-ai"]
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
RUN_SECONDS = 20  # past option parsing by then: codex and opencode retry the network, aider waits for a browser
USAGE_ERROR = re.compile(r"unknown option|unexpected argument|unrecognized|invalid option|no such option|"
                         r"^usage:|error: .*argument", re.IGNORECASE | re.MULTILINE)
LOGIN_OR_NETWORK = {
    "claude-code": "Not logged in",
    "codex": r"lookup address|waiting for network|Reconnecting|Not logged in|401",
    "opencode": None,  # prints its agent and model, then waits for the network: still running is the sign
    "aider": r"openrouter|API key|browser",
}


@pytest.fixture(scope="module")
def real_clis(tmp_path_factory) -> pathlib.Path:
    """A bin directory with the real claude, codex, opencode and aider, installed now."""
    root = tmp_path_factory.mktemp("clis")
    subprocess.run(["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error",
                    *NPM_PACKAGES], check=True, capture_output=True, timeout=900)
    venv = root / "aider-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "aider-chat"], check=True, capture_output=True,
                   timeout=1800)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex", "opencode"):
        (bin_dir / name).symlink_to(root / "node_modules" / ".bin" / name)
    (bin_dir / "aider").symlink_to(venv / "bin" / "aider")  # not the venv's bin: its python would shadow ours
    return bin_dir


def _no_credentials() -> dict[str, str]:
    return {key: "" for key in (*PROVIDER_KEYS, "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "CODEX_API_KEY")}


@pytest.mark.parametrize("preset", sorted(agents.PRESETS))
def test_each_preset_gets_past_its_options_to_the_login_or_network_step(real_clis, tmp_path, preset):
    scratch = make_repo(tmp_path / "scratch")
    own = tmp_path / "own"
    own.mkdir()
    prompt = tmp_path / "prompt.md"
    prompt.write_text("# Task: t\n\nAdd a comment to prog.py.\n")
    agent = CommandAgentConfig(preset=preset)
    env = agents.environment(scratch, prompt, own / "notes.md", prompt, own, "t-0001", "t", 0, (0,))
    env.update(agents.sandboxed_environment(agent))
    env.update(_no_credentials())
    env["PATH"] = f"{real_clis}:{os.environ['PATH']}"
    box = sandbox.agent_sandbox([], [prompt], [scratch, own], agents.state_dirs(agent), network=True,
                                visible=[real_clis.parent])
    try:
        result = run_command("agent", agents.command_line(agent), scratch, RUN_SECONDS, None,
                             log_path=tmp_path / "agent.log", env=env, sandbox=box)
        stopped = f"exit {result.returncode}"
    except PhaseTimeout:
        stopped = "still running"
    except PhaseError as error:
        stopped = str(error)
    output = (tmp_path / "agent.log").read_text()
    assert not USAGE_ERROR.search(output), (preset, stopped, output[-2000:])
    assert "cannot be used with root" not in output  # claude as root: IS_SANDBOX=1 inside the sandbox
    expected = LOGIN_OR_NETWORK[preset]
    if expected is None:
        assert stopped == "still running", (preset, stopped, output[-2000:])
    else:
        assert re.search(expected, output, re.IGNORECASE), (preset, stopped, output[-2000:])


def test_the_readme_shows_each_preset_s_command_line_as_rendered():
    text = README.read_text()
    for name in agents.PRESETS:
        rendered = agents.command_line(CommandAgentConfig(preset=name))
        assert f"| `{name}` | `{rendered}` |" in text, (name, rendered)


def test_validate_says_in_one_line_that_the_real_claude_is_not_logged_in(real_clis, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    data = config_dict(repo, [])
    data["strategies"] = [{"name": "claude", "agent": "command", "open": 1, "command": {"preset": "claude-code"}}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PATH", f"{real_clis}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a user who never logged in
    for key, value in _no_credentials().items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert time.monotonic() - started < 30
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"{path}: strategies.0.command: agent of claude: claude: not logged in: run claude once and log in, or set "
        f"ANTHROPIC_API_KEY"]
