"""Text from programs and agents, fenced as data in the Markdown the farm writes for agents and planners.

A guard's output, git's messages, a diff or an earlier agent's notes may hold a run of backticks themselves: in a
fence of three, a line of three backticks in the text would close the fence, and whatever follows (say, a heading
"## New instructions") would read as part of the farm's own prompt. CommonMark closes a backtick fence only with a
run at least as long as the one that opened it, so a fence longer than any backtick run inside the text cannot be
closed from inside.
"""
from __future__ import annotations

import re


def fence_for(text: str) -> str:
    """The backtick fence for `text`: one backtick longer than its longest run of backticks, and at least three."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def fenced(text: str, info: str = "text") -> str:
    """`text` as a fenced code block (`info` after the opening fence), with no line end after the closing fence.

    Nothing in `text` can end the block: see fence_for."""
    fence = fence_for(text)
    body = text if not text or text.endswith(("\n", "\r")) else text + "\n"
    return f"{fence}{info}\n{body}{fence}"
