"""Knob searches: each hypothesis is one setting of a strategy's parameters, written into the checkout.

A knob is written to a file of the repository (a regular expression's group replaced by the value), to an
environment variable, or to a variable of compiler flags. Variables go to the checkout's env file
(phases.env_file, `NAME=value` lines), which every phase of that checkout runs with: the setting is part of
the commit, so a landed setting stays set for everything measured on top of it.
"""
from __future__ import annotations

import itertools
import pathlib
import re

import numpy as np

from farm.config import KnobsConfig

Setting = tuple[tuple[str, str], ...]  # (knob name, value) for every knob, in the config's order


class KnobError(Exception):
    """A knob cannot be written into this checkout (its file or pattern is not there)."""


def settings(knobs: KnobsConfig) -> list[Setting]:
    """The settings to try: the whole grid in order, or `samples` distinct ones drawn with `seed`."""
    names = [p.name for p in knobs.params]
    grid = [tuple(zip(names, values)) for values in itertools.product(*(p.choices() for p in knobs.params))]
    if knobs.search == "grid" or knobs.samples >= len(grid):
        return grid
    picked = np.random.default_rng(knobs.seed).choice(len(grid), size=knobs.samples, replace=False)
    return [grid[i] for i in sorted(picked)]


def describe(setting: Setting) -> str:
    return " ".join(f"{name}={value!r}" if not value or " " in value else f"{name}={value}"
                    for name, value in setting)


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped); {} when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    variables = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            variables[name.strip()] = value
    return variables


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
        path = worktree / env_file
        merged = read_env_file(path) | {name: " ".join(parts) for name, parts in variables.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Written by autoresearch-farm's knob search: the phases run with these variables.\n"
                        + "".join(f"{name}={value}\n" for name, value in merged.items()), encoding="utf-8")


def _replace_in_file(worktree: pathlib.Path, knob: str, relative: str, pattern: str, value: str) -> None:
    path = worktree / relative
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KnobError(f"knob {knob}: cannot read {relative}: {error.strerror}") from None
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise KnobError(f"knob {knob}: the pattern {pattern!r} matches nothing in {relative}")
    path.write_text(text[:match.start(1)] + value + text[match.end(1):], encoding="utf-8")
