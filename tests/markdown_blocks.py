"""Read Markdown the way a CommonMark reader does (markdown-it-py, which rich depends on): the fenced blocks and the
headings of a prompt or a memory file, to check where text from programs and agents ends up."""
from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark")


def fenced_blocks(text: str) -> list[str]:
    """The content of every fenced code block, in order."""
    return [token.content for token in _PARSER.parse(text) if token.type == "fence"]


def headings(text: str) -> list[str]:
    """The text of every heading outside code blocks, in order."""
    tokens = _PARSER.parse(text)
    return [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
