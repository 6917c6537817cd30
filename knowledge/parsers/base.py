"""What a parser returns, the errors it may raise, and text decoding shared by text parsers."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import charset_normalizer

# Set by the indexer while a parser runs: True once the parser should stop early (a cancel,
# the file's time budget). A long parser (a PDF of 10,000 pages) asks between pieces of work
# and returns what it has, with a warning.
_stop_check: ContextVar[Callable[[], bool] | None] = ContextVar("parser_stop", default=None)


def stop_requested() -> bool:
    check = _stop_check.get()
    return bool(check and check())


@contextmanager
def stop_when(check: Callable[[], bool]) -> Iterator[None]:
    token = _stop_check.set(check)
    try:
        yield
    finally:
        _stop_check.reset(token)


def normalise_text(text: str) -> str:
    """NFKC: ligatures (ﬁ ﬂ), full-width forms and the like become the letters people
    type, so keyword search finds "definition" whichever way a PDF wrote it."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class Section:
    """A run of text under one heading or on one page. Chunks never cross sections."""

    text: str
    heading: str = ""
    page: int | None = None


@dataclass
class ParsedDocument:
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return any(s.text.strip() for s in self.sections)


class ParseError(Exception):
    """The file could not be turned into text. ``status`` goes on the document row."""

    status = "failed"


class EncryptedDocumentError(ParseError):
    status = "encrypted"


class NoTextLayerError(ParseError):
    status = "no_text"


class BinaryContentError(ParseError):
    status = "skipped"


class Parser(Protocol):
    """One document type. ``name`` is recorded as the document's type and used in filters."""

    name: str
    extensions: frozenset[str]  # lower case, with the dot: {".md", ".markdown"}

    def parse(self, data: bytes, path: Path) -> ParsedDocument: ...


_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_TEXT_CONTROLS = {7, 8, 9, 10, 11, 12, 13, 27}


def looks_binary(data: bytes, sample: int = 8192) -> bool:
    """NUL bytes or many control characters in the first KiB: not text.

    UTF-16/32 text contains NULs, so a byte-order mark wins over the NUL test.
    """
    head = data[:sample]
    if not head or head.startswith(_BOMS):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    return controls / len(head) > 0.10


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """Decode bytes of unknown encoding; return the text and warnings for the user.

    UTF-8 is tried strictly first (most files, and the fast path). Otherwise
    charset-normalizer guesses; if it cannot, bytes are decoded as UTF-8 with replacement
    characters and the number replaced is reported rather than the file being dropped.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(data))
    if matches:
        best = matches[0]
        # On short texts charset-normalizer often ranks a Baltic or Central European code
        # page first for plain Western text ("crème" -> "crčme"); Windows-1252 is by far the
        # most common legacy encoding of documents, so it wins when it is about as plausible.
        for match in matches:
            if match.encoding in _WESTERN and match.chaos <= best.chaos + 0.15:
                best = match
                break
        return str(best), [f"decoded as {best.encoding} (not UTF-8)"]
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    return text, [f"{bad} undecodable byte sequence(s) replaced with U+FFFD"]


def decode_or_refuse(data: bytes) -> tuple[str, list[str]]:
    if looks_binary(data):
        raise BinaryContentError("binary content (not text)")
    return decode_text(data)
