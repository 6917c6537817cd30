"""The parser registry: file extension -> :class:`Parser`.

A new document type is one small module exposing ``PARSER`` (an object with ``name``,
``extensions`` and ``parse(data, path)``), listed in ``_BUILTIN`` or passed to
:func:`register` at run time. A file whose extension no parser claims is sniffed: if its
bytes look like text it is read as plain text, otherwise it is skipped.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from knowledge.parsers.base import (
    BinaryContentError,
    EncryptedDocumentError,
    NoTextLayerError,
    ParsedDocument,
    ParseError,
    Parser,
    Section,
    looks_binary,
)

__all__ = [
    "BinaryContentError",
    "EncryptedDocumentError",
    "NoTextLayerError",
    "ParseError",
    "ParsedDocument",
    "Parser",
    "Section",
    "fallback_parser",
    "looks_binary",
    "parser_for",
    "register",
    "registered_types",
]

_BUILTIN = ("text", "markdown", "pdf", "html", "code")
_by_extension: dict[str, Parser] = {}
_by_name: dict[str, Parser] = {}


def register(parser: Parser) -> None:
    """Add a parser; a later registration wins for the extensions it claims."""
    _by_name[parser.name] = parser
    for ext in parser.extensions:
        _by_extension[ext.lower()] = parser


def parser_for(path: Path) -> Parser | None:
    """The parser claiming this file's extension, or None (see :func:`fallback_parser`)."""
    return _by_extension.get(path.suffix.lower())


def fallback_parser() -> Parser:
    """Used for unclaimed extensions whose content looks like text."""
    return _by_name["text"]


def registered_types() -> list[str]:
    return sorted(_by_name)


for _module in _BUILTIN:
    register(importlib.import_module(f"knowledge.parsers.{_module}").PARSER)
