"""Source code: a new section at each top-level definition, headed by its first line.

This is a light, language-agnostic split (no grammar per language): lines starting at
column 0 with a definition keyword. It keeps a function and its comment together so hits
point at something a person recognises ("def parse_config(path):").
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.parsers.base import ParsedDocument, Section, decode_or_refuse

_DEFINITION = re.compile(
    r"^(?:export\s+|pub(?:\([^)]*\))?\s+|public\s+|private\s+|protected\s+|static\s+|async\s+|"
    r"abstract\s+|final\s+|override\s+|inline\s+)*"
    r"(?:def|class|function|func|fn|struct|enum|trait|impl|interface|module|type|const|"
    r"object|record|namespace|sub|proc|procedure)\b"
)
MAX_HEADING_CHARS = 100


class CodeParser:
    name = "code"
    extensions = frozenset(
        {
            ".py",
            ".pyi",
            ".js",
            ".mjs",
            ".cjs",
            ".ts",
            ".tsx",
            ".jsx",
            ".java",
            ".kt",
            ".kts",
            ".scala",
            ".c",
            ".h",
            ".cc",
            ".cpp",
            ".cxx",
            ".hpp",
            ".hh",
            ".cs",
            ".go",
            ".rs",
            ".rb",
            ".php",
            ".swift",
            ".m",
            ".mm",
            ".lua",
            ".pl",
            ".pm",
            ".r",
            ".jl",
            ".hs",
            ".ml",
            ".ex",
            ".exs",
            ".erl",
            ".clj",
            ".dart",
            ".sh",
            ".bash",
            ".zsh",
            ".fish",
            ".ps1",
            ".bat",
            ".sql",
            ".css",
            ".scss",
            ".less",
            ".vue",
            ".svelte",
            ".json",
            ".yaml",
            ".yml",
            ".toml",
            ".ini",
            ".cfg",
            ".conf",
            ".xml",
            ".proto",
            ".graphql",
            ".tf",
            ".cmake",
            ".gradle",
            ".mk",
        }
    )

    def parse(self, data: bytes, path: Path) -> ParsedDocument:
        text, warnings = decode_or_refuse(data)
        return ParsedDocument(split_code(text, path.name), warnings)


def split_code(text: str, file_name: str) -> list[Section]:
    sections: list[Section] = []
    body: list[str] = []
    heading = file_name
    pending_comment: list[str] = []  # comment lines just above a definition belong to it

    def flush() -> None:
        content = "".join(body)
        if content.strip():
            sections.append(Section(text=content, heading=heading))
        body.clear()

    for line in text.splitlines(keepends=True):
        if _DEFINITION.match(line):
            body_lines = body[: len(body) - len(pending_comment)] if pending_comment else body[:]
            body.clear()
            body.extend(body_lines)
            flush()
            heading = f"{file_name}: {line.strip()[:MAX_HEADING_CHARS]}"
            body.extend(pending_comment)
            pending_comment = []
            body.append(line)
            continue
        stripped = line.lstrip()
        if not line[:1].isspace() and stripped.startswith(("#", "//", "/*", "*", "--", ";", "@")):
            pending_comment.append(line)
        elif line.strip():
            pending_comment = []
        body.append(line)
    flush()
    return sections


PARSER = CodeParser()
