"""Knob searches: each hypothesis is one setting of a strategy's parameters, written into the checkout.

A knob is written to a file of the repository (a regular expression's group replaced by the value), to an
environment variable, or to a variable of compiler flags. Variables go to the checkout's env file
(phases.env_file, `NAME=value` lines), which every phase of that checkout runs with: the setting is part of
the commit, so a landed setting stays set for everything measured on top of it.
"""
from __future__ import annotations

import math
import pathlib
import random
import re

from farm.config import KnobsConfig

Setting = tuple[tuple[str, str], ...]  # (knob name, value) for every knob, in the config's order


class KnobError(Exception):
    """A knob cannot be written into this checkout (its file or pattern is not there)."""


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
    """`NAME=value` lines (blank lines and `#` comments skipped); {} when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return dict(filter(None, map(_variable, text.splitlines())))


def _variable(line: str) -> tuple[str, str] | None:
    if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
        return None
    name, value = line.split("=", 1)
    return name.strip(), value


def write(worktree: pathlib.Path, knobs: KnobsConfig, setting: Setting, env_file: str) -> None:
    """Write one setting into the checkout. Raises KnobError when a file or its pattern is missing."""
    values = dict(setting)
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
        _set_variables(worktree / env_file, {name: " ".join(parts) for name, parts in variables.items()})


def _set_variables(path: pathlib.Path, variables: dict[str, str]) -> None:
    """Set these variables in the env file: their lines replaced, new ones appended, every other line kept."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else [
        "# Written by autoresearch-farm's knob search: the phases run with these variables."]
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
