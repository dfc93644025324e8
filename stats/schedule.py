"""The looks of a group-sequential decision: at which block counts an experiment is decided.

Plain arithmetic, apart from stats/sequential.py (numpy, scipy): the campaign file's validation needs only this.
"""
from __future__ import annotations

import math


def validate_schedule(looks) -> tuple[int, ...]:
    """The schedule as a sorted tuple; raises ValueError unless it is increasing block counts >= 3."""
    schedule = tuple(int(n) for n in looks)
    if not schedule:
        raise ValueError("the look schedule is empty")
    if schedule[0] < 3 or any(b <= a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"looks must be increasing block counts of at least 3, got {list(looks)}")
    return schedule


def default_schedule(min_blocks: int, max_blocks: int) -> tuple[int, ...]:
    """Looks at min_blocks, then growing by about a quarter each time, ending at max_blocks.

    Looking at every block would force a stricter level for little gain: each
    extra look at a nearby block count adds little information.
    """
    if not 3 <= min_blocks <= max_blocks:
        raise ValueError(f"need 3 <= min_blocks <= max_blocks, got {min_blocks} and {max_blocks}")
    looks = [min_blocks]
    while looks[-1] < max_blocks:
        step = max(looks[-1] + 1, math.ceil(looks[-1] * 1.25))
        looks.append(max_blocks if max_blocks - step < 2 else step)
    return tuple(looks)
