"""Markdown: one section per heading, the heading recorded as a breadcrumb ("A > B > C").

ATX (``# Title``) and setext (``Title`` over ``===``/``---``) headings are recognised;
lines inside fenced code blocks are never taken for headings, and YAML front matter is
kept as a section of its own (it often holds the title and tags).
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.parsers.base import ParsedDocument, Section, decode_or_refuse

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _front_matter_end(lines: list[str]) -> int:
    """Index just past a leading ``---`` ... ``---`` block, or 0."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return i + 1
    return 0


def split_markdown(text: str) -> list[Section]:
    lines = text.splitlines(keepends=True)
    sections: list[Section] = []
    trail: list[str] = []  # heading text per level (index = level - 1)
    body: list[str] = []

    def flush() -> None:
        content = "".join(body)
        if content.strip():
            sections.append(Section(text=content, heading=" > ".join(h for h in trail if h)))
        body.clear()

    def start(level: int, title: str) -> None:
        flush()
        del trail[level - 1 :]
        trail.extend([""] * (level - 1 - len(trail)))
        trail.append(title.strip())

    i = _front_matter_end(lines)
    if i:
        body.extend(lines[:i])
        flush()
    in_fence = False
    fence_closed = False  # the previous line closed a code fence
    while i < len(lines):
        line = lines[i]
        is_fence = bool(_FENCE.match(line))
        if is_fence:
            in_fence = not in_fence
        if not in_fence and not is_fence:
            atx = _ATX.match(line.rstrip("\r\n"))
            if atx:
                start(len(atx.group(1)), atx.group(2))
                i += 1
                continue
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            # A setext title is one line of text directly under a blank line (or the start).
            prev_blank = not body or not body[-1].strip() or fence_closed
            if line.strip() and prev_blank and _SETEXT.match(nxt) and not _SETEXT.match(line):
                start(1 if nxt.strip().startswith("=") else 2, line)
                i += 2
                continue
        fence_closed = is_fence and not in_fence
        body.append(line)
        i += 1
    flush()
    return sections


class MarkdownParser:
    name = "markdown"
    extensions = frozenset({".md", ".markdown", ".mdown", ".mkd"})

    def parse(self, data: bytes, path: Path) -> ParsedDocument:
        text, warnings = decode_or_refuse(data)
        return ParsedDocument(split_markdown(text), warnings)


PARSER = MarkdownParser()
