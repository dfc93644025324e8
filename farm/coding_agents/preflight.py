"""Before the first experiment: can each preset agent start, and is it logged in?

A coding-agent CLI that is not logged in fails every hypothesis of its strategy, and some fail slowly: not
logged in, `codex exec` and `opencode run` retry the network and `aider` waits five minutes for a browser,
until the agent's timeout. So `farm validate` (and `farm run`, which validates first) asks each preset CLI
with its own status command, which calls no model and costs nothing:

    claude-code   `claude auth status` (JSON, "loggedIn"), or ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN /
                  CLAUDE_CODE_OAUTH_TOKEN set
    codex         `codex login status`, or OPENAI_API_KEY / CODEX_API_KEY set
    opencode      `opencode auth list` (its stored credentials), or a provider's API key set
    aider         no status command: a provider's API key set, or an aider configuration file with keys

A custom `command` is not checked (the farm cannot know what it needs). `command.preflight: false` turns the
check off for one strategy (for a login the check cannot see, such as a key in a wrapper script).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
from dataclasses import dataclass

from farm.campaign_file.config import CommandAgentConfig

STATUS_TIMEOUT_SECONDS = 20.0
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
                 "GROQ_API_KEY", "XAI_API_KEY", "MISTRAL_API_KEY")


@dataclass(frozen=True)
class LoginCheck:
    status: tuple[str, ...] | None  # the CLI's own status command (argv), or None
    keys: tuple[str, ...]  # environment variables that stand for a login
    advice: str  # the rest of the error line: what to do


def _claude_logged_in(output: str, returncode: int) -> bool:
    try:
        return bool(json.loads(output).get("loggedIn"))
    except (ValueError, AttributeError):
        return False


def _codex_logged_in(output: str, returncode: int) -> bool:
    return returncode == 0 and "not logged in" not in output.lower()


def _opencode_logged_in(output: str, returncode: int) -> bool:
    counted = re.search(r"(\d+)\s+credentials?", re.sub(r"\x1b\[[0-9;]*m", "", output))
    return returncode == 0 and counted is not None and int(counted.group(1)) > 0


CHECKS = {
    "claude-code": (LoginCheck(("claude", "auth", "status"),
                               ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"),
                               "run claude once and log in, or set ANTHROPIC_API_KEY"), _claude_logged_in),
    "codex": (LoginCheck(("codex", "login", "status"), ("OPENAI_API_KEY", "CODEX_API_KEY"),
                         "run codex login, or set OPENAI_API_KEY"), _codex_logged_in),
    "opencode": (LoginCheck(("opencode", "auth", "list"), PROVIDER_KEYS,
                            "run opencode auth login, or set a provider's API key (e.g. ANTHROPIC_API_KEY)"),
                 _opencode_logged_in),
    "aider": (LoginCheck(None, PROVIDER_KEYS,
                         "set a provider's API key (e.g. ANTHROPIC_API_KEY or OPENAI_API_KEY) or put it in "
                         "~/.aider.conf.yml; without one aider waits for a browser login"), None),
}
AIDER_CONFIG_FILES = ("~/.aider.conf.yml", "~/.env")


def login_problem(agent: CommandAgentConfig, env: dict[str, str] | None = None) -> str | None:
    """One line saying why the agent's CLI would stop at its login (`claude: not logged in: run claude once and
    log in, or set ANTHROPIC_API_KEY`), or None when it is logged in, or is not a preset, or is not checked."""
    if agent.preset is None or not agent.preflight:
        return None
    env = dict(os.environ if env is None else env)
    check, logged_in = CHECKS[agent.preset]
    program = check.status[0] if check.status else agent.preset
    if any(env.get(key) for key in check.keys):
        return None
    if check.status is None:
        if any(pathlib.Path(path).expanduser().is_file() for path in AIDER_CONFIG_FILES):
            return None
        return f"{program}: no API key in the environment ({', '.join(check.keys[:3])}, ...): {check.advice}"
    try:
        result = subprocess.run(list(check.status), capture_output=True, text=True, timeout=STATUS_TIMEOUT_SECONDS,
                                stdin=subprocess.DEVNULL, env=env, check=False)
    except subprocess.TimeoutExpired:
        return f"{program}: `{' '.join(check.status)}` did not answer in {STATUS_TIMEOUT_SECONDS:g}s: {check.advice}"
    except OSError as error:
        return f"{program}: cannot start: {error}"
    if logged_in(result.stdout + result.stderr, result.returncode):
        return None
    return f"{program}: not logged in: {check.advice}"
