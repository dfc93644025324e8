"""The farm's exceptions. The CLI catches these, prints one line, exits non-zero.

    FarmError
    ├── ConfigError          the campaign file is missing, not YAML, or invalid
    ├── TargetError          the target repository or base ref is unusable
    ├── StoreError           the DuckDB file cannot be opened or has the wrong schema
    ├── KnobError            a knob setting cannot be written (farm/campaign_file/knobs.py)
    └── PhaseError           a phase (agent, build, guard, bench) failed
        ├── PhaseTimeout     ... by running past its timeout (its process group was killed)
        └── ProtocolError    ... by printing output the benchmark protocol cannot read

The layers below farm/ import nothing of it, so their errors have roots of their own, caught by the CLI beside
FarmError (farm/cli.py, USER_ERRORS):

    worktrees.WorktreeError  a git operation failed (ApplyError: a patch does not apply; ChangeRefused: an
                             agent's change is refused)
    cpp_fixture.FixtureError the fixture cannot be set up
"""
from __future__ import annotations


class FarmError(Exception):
    """Base of every error the farm reports to a user."""


class ConfigError(FarmError):
    """Invalid campaign configuration; the message names the file and field path."""


class TargetError(FarmError):
    """The target repository or its base ref cannot be used."""


class StoreError(FarmError):
    """The experiment store cannot be opened or used."""


class PhaseError(FarmError):
    """A phase command failed. Carries the command, exit code, the tail of its output and its whole stdout."""

    def __init__(self, phase: str, message: str, command: str = "", returncode: int | None = None, tail: str = "",
                 stdout: str = ""):
        self.phase = phase
        self.command = command
        self.returncode = returncode
        self.tail = tail
        self.stdout = stdout
        super().__init__(message)


class PhaseTimeout(PhaseError):
    """A phase ran past its timeout and was killed."""


class ProtocolError(PhaseError):
    """Benchmark output that the configured protocol cannot read."""
