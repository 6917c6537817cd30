"""Plain text: one section; paragraphs are found by the chunker."""

from __future__ import annotations

from pathlib import Path

from knowledge.parsers.base import ParsedDocument, Section, decode_or_refuse


class TextParser:
    name = "text"
    extensions = frozenset({".txt", ".text", ".log", ".rst", ".csv", ".tsv", ".org", ".tex", ""})

    def parse(self, data: bytes, path: Path) -> ParsedDocument:
        text, warnings = decode_or_refuse(data)
        return ParsedDocument([Section(text=text)], warnings)


PARSER = TextParser()
