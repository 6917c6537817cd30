"""Where each token of a text lies in it: the embedder's token pieces mapped back to
character offsets, in one pass.

The chunker cuts by token positions, so a text is tokenized once (in windows of bounded
size) rather than re-tokenized slice by slice. llama.cpp hands back each token's piece as
bytes; how a piece relates to the text depends on the tokenizer (WordPiece lowercases, drops
accents and control characters, and writes ``[UNK]`` for a word it cannot spell; SentencePiece
writes spaces as part of pieces; byte-level BPE may split a character over two tokens). So
both sides are folded the same way (NFD, accents dropped, lower case) and matched greedily,
with a bounded look-ahead to resynchronise. Offsets found this way are a plan, not a promise:
the chunker still counts every chunk exactly before accepting it.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

Span = tuple[int, int]
# Content tokens of a text (no [CLS]/[SEP]), each as the bytes its piece prints as.
TokenPieces = Callable[[str], Sequence[bytes]]

_LOOKAHEAD = 32  # characters searched past the expected place before giving up on a piece
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x08\x0e-\x1f\x7f\u200b-\u200f\ufeff\ufffd]*")
_WORD_END = re.compile(r"\w+|\S")


@runtime_checkable
class PieceTokenizer(Protocol):
    """An embedder that can show its tokens (``LlamaCppEmbedder`` can)."""

    def token_pieces(self, text: str) -> Sequence[bytes]: ...


def _fold_char(ch: str, cache: dict[str, str]) -> str:
    folded = cache.get(ch)
    if folded is None:
        decomposed = unicodedata.normalize("NFD", ch)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
        cache[ch] = folded
    return folded


def fold(text: str) -> tuple[str, list[int] | None]:
    """``text`` folded (NFD without accents, lower case) and, unless lengths agree char for
    char, where each folded character came from in ``text``."""
    if text.isascii():
        return text.lower(), None
    cache: dict[str, str] = {}
    parts: list[str] = []
    back: list[int] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _ASCII_RUN.match(text, pos)
        if m:
            parts.append(m.group().lower())
            back.extend(range(pos, m.end()))
            pos = m.end()
            continue
        folded = _fold_char(text[pos], cache)
        parts.append(folded)
        back.extend([pos] * len(folded))
        pos += 1
    return "".join(parts), back


def align(text: str, pieces: Sequence[bytes], offset: int = 0) -> list[Span]:
    """Character span of each token of ``text``, plus ``offset`` (spans never go backwards;
    an unknown token covers the rest of its word, a token holding part of a character
    covers nothing)."""
    folded, back = fold(text)
    n = len(folded)
    off = offset if back is None else 0  # added here, or after mapping back
    spans: list[Span] = []
    append = spans.append
    startswith = folded.startswith
    skip = _WHITESPACE_OR_CONTROL.match
    pos = 0
    cache: dict[bytes, str] = {}
    char_cache: dict[str, str] = {}
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = False
    for piece in pieces:
        p = None if pending else cache.get(piece)
        if p is None:
            decoded = decoder.decode(piece)
            pending = bool(decoder.getstate()[0])
            if not pending and decoded and not decoded.isascii():
                decoded = "".join(_fold_char(c, char_cache) for c in decoded)
            p = decoded.lower().strip()
            if not pending and "\ufffd" not in decoded:
                cache[piece] = p
        # Fast paths first: a piece right here, or after one space.
        if p and startswith(p, pos):
            start = pos
        elif p and pos < n and folded[pos] == " " and startswith(p, pos + 1):
            start = pos + 1
        else:
            start = skip(folded, pos).end()  # type: ignore[union-attr]
            if not p:
                if pending or piece:  # part of a character, or a piece that is only a space
                    append((start + off, start + off))
                    continue
                # An unknown token ([UNK]) stands for the rest of the word.
                word = _WORD_END.match(folded, start)
                end = word.end() if word else start
                append((start + off, end + off))
                pos = end
                continue
            if not startswith(p, start):
                found = folded.find(p, start, start + len(p) + _LOOKAHEAD)
                # Not found nearby: the tokenizer normalises differently; assume the piece
                # covers as many characters as it has and carry on.
                end = found + len(p) if found >= 0 else min(n, start + len(p))
                append((start + off, end + off))
                pos = end
                continue
        pos = start + len(p)
        append((start + off, pos + off))
    if spans and pos < n and folded[pos:].strip():
        # Text the pieces did not account for (dropped characters at the end).
        tail = len(folded[pos:].rstrip()) + pos
        spans[-1] = (spans[-1][0], tail + off)
    if back is not None:
        spans = [_back(back, text, s, e, offset) for s, e in spans]
    return spans


def _back(back: list[int], text: str, start: int, end: int, offset: int) -> Span:
    n = len(back)
    s = back[start] if start < n else len(text)
    if end <= start:
        return s + offset, s + offset
    e = back[end - 1] + 1
    # Accents dropped by folding belong to the character before them.
    while e < len(text) and unicodedata.combining(text[e]):
        e += 1
    return s + offset, max(s, e) + offset


class EstimatedPieces:
    """For an embedder that cannot show its tokens: each word counted once (cached), its
    tokens spread evenly over it. Linear in the text; the chunker's exact check keeps every
    chunk within the limit whatever the estimate."""

    _ATOM = re.compile(r"\w{1,24}|[^\w\s]")

    def __init__(self, count_tokens: Callable[[str], int]) -> None:
        self.count_tokens = count_tokens
        self.special = count_tokens("")
        self._cache: dict[str, int] = {}

    def spans(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for m in self._ATOM.finditer(text):
            atom = m.group()
            n = self._cache.get(atom)
            if n is None:
                n = max(1, self.count_tokens(atom) - self.special)
                if len(self._cache) < 100_000:
                    self._cache[atom] = n
            start, length = m.start(), len(atom)
            for k in range(n):
                spans.append(
                    (start + math.floor(k * length / n), start + math.floor((k + 1) * length / n))
                )
        return spans
