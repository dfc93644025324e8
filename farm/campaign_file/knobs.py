"""Knob searches: each hypothesis is one setting of a strategy's parameters, written into the checkout.

A knob is written to a file of the repository (a regular expression's group replaced by the value), to an
environment variable, or to a variable of compiler flags. Variables go to the checkout's env file
(phases.env_file, `NAME=value` lines), which every phase of that checkout runs with: the setting is part of
the commit, so a landed setting stays set for everything measured on top of it.

What a knob writes stays inside the checkout and on one line. The config refuses a knob file outside it (absolute,
`..`, under .git) and a value with a line break or NUL (farm/campaign_file/config.py); `write` checks both again on the
checkout itself, since a hypothesis may come back from a stored campaign (`--resume`) and a file's path may run
through a symbolic link: the real path must be inside the checkout.
"""
from __future__ import annotations

import math
import pathlib
import random
import re

from farm.campaign_file.config import FARM_VARIABLES, KnobsConfig, knob_value_problem
from farm.errors import FarmError

Setting = tuple[tuple[str, str], ...]  # (knob name, value) for every knob, in the config's order


class KnobError(FarmError):
    """A knob cannot be written into this checkout (its file or pattern is not there, its file is outside the
    checkout, its value is not one line)."""


def settings(knobs: KnobsConfig) -> list[Setting]:
    """The settings to try: the whole grid in order, or `samples` distinct ones drawn with `seed` (in grid
    order; drawn as grid positions, so a huge grid is never listed)."""
    choices = [p.choices() for p in knobs.params]
    size = math.prod(len(c) for c in choices)
    if knobs.search == "grid" or knobs.samples >= size:
        positions = range(size)
    else:
        positions = sorted(random.Random(knobs.seed).sample(range(size), knobs.samples))
    return [_setting(knobs, choices, position) for position in positions]


def _setting(knobs: KnobsConfig, choices: list[list[str]], position: int) -> Setting:
    """The grid's setting at `position` (the last knob varies fastest, as in itertools.product)."""
    values = []
    for values_of_knob in reversed(choices):
        position, index = divmod(position, len(values_of_knob))
        values.append(values_of_knob[index])
    return tuple(zip((p.name for p in knobs.params), reversed(values)))


def describe(setting: Setting) -> str:
    return " ".join(f"{name}={value!r}" if not value or " " in value else f"{name}={value}"
                    for name, value in setting)


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """The variables of `NAME=value` lines; {} when the file does not exist.

    One line defines at most one variable, and nothing inside a value starts another: lines end at a line feed
    only (a carriage return before it is dropped), not at the other breaks str.splitlines knows (vertical tab,
    U+0085, U+2028, ...). Skipped: blank lines, `#` comments, lines without `=`, names that are not variable
    names (`export X=1`), values with a NUL (no process can get one), and the variables the farm sets for every
    phase (config.FARM_VARIABLES: PATH, the CPU pinning, the process tag). A later line for a name wins."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    variables = (_variable(line) for line in _lines(text))
    return {name: value for name, value in filter(None, variables)
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name not in FARM_VARIABLES and "\0" not in value}


def _lines(text: str) -> list[str]:
    """The env file's lines, as read_env_file reads them (see there)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _variable(line: str) -> tuple[str, str] | None:
    if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
        return None
    name, value = line.split("=", 1)
    return name.strip(), value


def write(worktree: pathlib.Path, knobs: KnobsConfig, setting: Setting, env_file: str) -> None:
    """Write one setting into the checkout. Raises KnobError (one line) when a file or its pattern is missing,
    a file (or the env file) is not inside the checkout, or a value holds a line break or NUL (these two are
    checked before anything is written)."""
    values = dict(setting)
    for name, value in setting:
        problem = knob_value_problem(value)
        if problem:
            raise KnobError(f"knob {name}: {problem}")
    env_path = _inside(worktree, env_file, "the env file")
    for param in knobs.params:
        if param.write.file is not None:
            _inside(worktree, param.write.file, f"knob {param.name}")
    variables: dict[str, list[str]] = {}
    for param in knobs.params:
        value, place = values[param.name], param.write
        if place.file is not None:
            _replace_in_file(worktree, param.name, place.file, place.pattern, value)
        elif place.env is not None:
            variables[place.env] = [value]
        else:
            variables.setdefault(place.flags, []).extend([value] if value else [])
    if variables:
        _set_variables(env_path, {name: " ".join(parts) for name, parts in variables.items()})


def _inside(worktree: pathlib.Path, relative: str, what: str) -> pathlib.Path:
    """The real path of `relative` in the worktree (symbolic links followed, `..` resolved); KnobError if it is
    not inside the worktree."""
    top = worktree.resolve()
    real = (top / relative).resolve()
    if not real.is_relative_to(top):
        raise KnobError(f"{what}: {relative} leads outside the checkout (to {real}); refused")
    return real


def _set_variables(path: pathlib.Path, variables: dict[str, str]) -> None:
    """Set these variables in the env file: their lines replaced, new ones appended, every other line kept."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        lines = _lines(text.removesuffix("\n")) if text else []
    else:
        lines = ["# Written by autoresearch-farm's knob search: the phases run with these variables."]
    left = dict(variables)
    for number, line in enumerate(lines):
        variable = _variable(line)
        if variable and variable[0] in left:
            lines[number] = f"{variable[0]}={left.pop(variable[0])}"
    lines += [f"{name}={value}" for name, value in left.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def value_place(pattern: str, text: str) -> tuple[int, int] | None:
    """Where the pattern's group is in the text's first match, or None (no match, or the group took no part)."""
    match = re.search(pattern, text, re.MULTILINE)
    if match is None or match.start(1) < 0:
        return None
    return match.span(1)


def _replace_in_file(worktree: pathlib.Path, knob: str, relative: str, pattern: str, value: str) -> None:
    path = worktree / relative
    try:
        with path.open(encoding="utf-8", newline="") as handle:  # newline="": CRLF files stay CRLF
            text = handle.read()
    except OSError as error:
        raise KnobError(f"knob {knob}: cannot read {relative}: {error.strerror}") from None
    place = value_place(pattern, text)
    if place is None:
        raise KnobError(f"knob {knob}: the pattern {pattern!r} (its group) matches nothing in {relative}")
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text[:place[0]] + value + text[place[1]:])
