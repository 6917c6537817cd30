"""Split parsed sections into chunks that fit the embedding model, measured in its tokens.

A chunk never crosses a section (a heading or a page), prefers paragraph boundaries, then
sentence boundaries, then words, and repeats the tail of the previous chunk (``overlap``
tokens) so a sentence cut at a boundary is still found. Every chunk's text is a literal
slice of its section, so offsets point back into the document.

Linear time on any text: a section is cut into windows of at most ``WINDOW_CHARS``
characters (at a paragraph, line or word break when there is one), each window is tokenized
once, and chunks are cut by token positions mapped back to characters (see
:mod:`knowledge.tokens`). Each chunk is then counted once more, exactly, with its heading and
the model's special tokens; one over the limit gives back its last tokens and is counted
again. No text longer than the limit ever reaches the model, and no slice is ever
re-tokenized in a search (a 5 MB "word" costs what 5 MB of prose costs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from knowledge.parsers.base import Section
from knowledge.tokens import EstimatedPieces, Span, TokenPieces, align

TokenCounter = Callable[[str], int]
# Called between windows; raises to stop (a cancel, a time budget).
Checkpoint = Callable[[], None]

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32
# A heading longer than this (a breadcrumb of long titles) is cut for the embedded text.
MAX_HEADING_CHARS = 160
# Text tokenized in one call: bounds memory and the time between two cancel checks.
WINDOW_CHARS = 32_768

_SENTENCE_CHARS = frozenset(".!?。！？")
_CLOSERS = frozenset("\"')]”’»")
_CJK_STOPS = frozenset("。！？")
_STOP_OR_CLOSER = _SENTENCE_CHARS | _CLOSERS
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
LONG_RUN_CHARS = 100  # BERT's own tokenizer gives up on longer words ([UNK])
_LONG_RUN = re.compile(rf"\S{{{LONG_RUN_CHARS},}}")


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    heading: str
    page: int | None
    start_char: int  # offsets into the document's extracted text (sections joined)
    end_char: int
    # Tokens of ``embed_text``: exact, or for text made of long runs without a space an upper
    # bound (see Chunker._count). Never more than the chunker's limit either way.
    token_count: int

    @property
    def embed_text(self) -> str:
        """What is embedded: the heading gives a chunk its context ("Setup > Linux")."""
        return embed_text(self.heading, self.text)

    @property
    def text_hash(self) -> str:
        return text_hash(self.embed_text)


def embed_text(heading: str, text: str) -> str:
    heading = heading[:MAX_HEADING_CHARS]
    return f"{heading}\n\n{text}" if heading else text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Chunker:
    def __init__(
        self,
        count_tokens: TokenCounter,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
        token_pieces: TokenPieces | None = None,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        if chunk_tokens < 16:
            raise ValueError("chunk_tokens must be at least 16")
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = max(0, min(overlap_tokens, chunk_tokens // 4))
        self.token_pieces = token_pieces
        self.window_chars = max(window_chars, 1024)
        self._estimate = EstimatedPieces(count_tokens) if token_pieces is None else None
        self.special = count_tokens("")  # what every input costs ([CLS], [SEP] ...)

    def chunk(self, sections: list[Section]) -> list[Chunk]:
        return list(self.iter_chunks(sections))

    def iter_chunks(
        self, sections: list[Section], checkpoint: Checkpoint | None = None
    ) -> Iterator[Chunk]:
        """Chunks in order, made lazily window by window (memory stays bounded)."""
        seq = 0
        base = 0
        for section in sections:
            for start, end, tokens in self._split_section(section, checkpoint):
                yield Chunk(
                    seq=seq,
                    text=section.text[start:end],
                    heading=section.heading,
                    page=section.page,
                    start_char=base + start,
                    end_char=base + end,
                    token_count=tokens,
                )
                seq += 1
            base += len(section.text)

    # -- one section ------------------------------------------------------------------

    def _split_section(
        self, section: Section, checkpoint: Checkpoint | None
    ) -> Iterator[tuple[int, int, int]]:
        text = section.text
        if not text.strip():
            return
        fixed = (
            self.count_tokens(embed_text(section.heading, "")) if section.heading else self.special
        )
        # Two tokens to spare: the bound for long runs (see _count) then fits as planned.
        budget = self.chunk_tokens - fixed - 2
        if budget < self.chunk_tokens // 2:
            # A very long heading: give it no more than half the chunk.
            budget = self.chunk_tokens // 2
        for w_start, w_end in windows(text, self.window_chars):
            if checkpoint is not None:
                checkpoint()
            spans = self._spans(text, w_start, w_end)
            if spans:
                yield from self._pack(text, section.heading, spans, budget, fixed)

    def _spans(self, text: str, start: int, end: int) -> list[Span]:
        """Token spans of ``text[start:end]``. A run of ``LONG_RUN_CHARS`` or more characters
        without a space (a blob, a minified line) is not given to the tokenizer: a
        WordPiece tokenizer costs tens of microseconds per character on such a run (it
        tries every vocabulary length at every position), so the run is planned at one
        token per character, a bound that holds for any tokenizer."""
        spans: list[Span] = []
        pos = start
        for run in _LONG_RUN.finditer(text, start, end):
            spans.extend(self._tokenized(text, pos, run.start()))
            spans.extend((i, i + 1) for i in range(run.start(), run.end()))
            pos = run.end()
        spans.extend(self._tokenized(text, pos, end))
        return spans

    def _tokenized(self, text: str, start: int, end: int) -> list[Span]:
        if start >= end:
            return []
        window = text[start:end]
        if self.token_pieces is not None:
            return align(window, self.token_pieces(window), offset=start)
        assert self._estimate is not None
        return [(s + start, e + start) for s, e in self._estimate.spans(window)]

    def _count(self, heading: str, text: str, fixed: int) -> int:
        """Tokens of the chunk: exact, except for text made of long runs, where the bound
        ``fixed + UTF-8 bytes + 2`` is taken when it is within the limit (every tokenizer
        llama.cpp has spends at most one token per byte) instead of the slow exact count."""
        if _LONG_RUN.search(text):
            bound = fixed + len(text.encode("utf-8", "surrogatepass")) + 2
            if bound <= self.chunk_tokens:
                return bound
        return self.count_tokens(embed_text(heading, text))

    def _fits(self, heading: str, text: str, start: int, end: int) -> int | None:
        tokens = self.count_tokens(embed_text(heading, text[start:end]))
        return tokens if tokens <= self.chunk_tokens else None

    def _pack(
        self, text: str, heading: str, spans: list[Span], budget: int, fixed: int
    ) -> Iterator[tuple[int, int, int]]:
        """Greedy chunks of at most ``budget`` tokens, cut at the best break near the end,
        each starting with an overlap tail of the previous one."""
        n = len(spans)
        i = 0
        while i < n:
            j = min(n, i + budget)
            k = j if j == n else self._cut(text, spans, i, j)
            while True:
                start, end = _trim(text, spans[i][0], spans[k - 1][1])
                if start >= end:
                    tokens = 0
                    break
                tokens = self._count(heading, text[start:end], fixed)
                if tokens <= self.chunk_tokens or k - i == 1:
                    break
                # The plan was an estimate: give back the excess (and a little) and recount.
                over = tokens - self.chunk_tokens
                k = max(i + 1, k - max(over + 2, (k - i) // 16, 1))
            if tokens > self.chunk_tokens:
                # One token's span does not fit on its own (the alignment went astray):
                # cut it by characters, halving until a piece fits.
                yield from self._by_characters(text, heading, start, end)
            elif tokens:
                yield start, end, tokens
            if k >= n:
                break
            i = self._next_start(text, spans, i, k)

    def _cut(self, text: str, spans: list[Span], i: int, j: int) -> int:
        """The end (exclusive token index) in ``(i + half, j]`` at the best break."""
        low = i + max(1, (j - i) // 2)
        sentence = word = 0
        stops = _STOP_OR_CLOSER
        for k in range(j, low - 1, -1):
            prev_start, prev_end = spans[k - 1]
            next_start = spans[k][0]
            gap = next_start > prev_end
            if gap:
                if "\n" in text[prev_end:next_start] and _PARAGRAPH.search(
                    text, prev_end, next_start
                ):
                    return k
                if not word:
                    word = k
            if (
                not sentence
                and prev_end > prev_start
                and text[prev_end - 1] in stops
                and _ends_sentence(text, prev_start, prev_end, gap)
            ):
                sentence = k
        return sentence or word or j

    def _next_start(self, text: str, spans: list[Span], i: int, k: int) -> int:
        """Where the next chunk starts: ``overlap`` tokens back, at the best break there."""
        if not self.overlap_tokens:
            return k
        low = max(i + 1, k - self.overlap_tokens)
        sentence = word = 0
        for s in range(low, k):
            prev_end, start = spans[s - 1][1], spans[s][0]
            gap = start > prev_end
            if gap and _PARAGRAPH.search(text, prev_end, start):
                return s
            if not sentence and _ends_sentence(text, spans[s - 1][0], prev_end, gap):
                sentence = s
            if not word and gap:
                word = s
        return sentence or word or (k if low >= k else low)

    def _by_characters(
        self, text: str, heading: str, start: int, end: int
    ) -> Iterator[tuple[int, int, int]]:
        pos = start
        while pos < end:
            size = end - pos
            while True:
                s, e = _trim(text, pos, pos + size)
                if s >= e:
                    tokens: int | None = 0
                    break
                tokens = self._fits(heading, text, s, e)
                if tokens is not None:
                    break
                if size == 1:
                    raise ValueError("chunker could not fit a unit into the token limit")
                size = max(1, size // 2)
            if tokens:
                yield s, e, tokens
            pos += size


def _ends_sentence(text: str, token_start: int, token_end: int, gap: bool) -> bool:
    k = token_end
    while k > token_start and text[k - 1] in _CLOSERS:
        k -= 1
    if k <= token_start:
        return False
    last = text[k - 1]
    return last in _SENTENCE_CHARS and (gap or last in _CJK_STOPS)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def windows(text: str, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive pieces of ``text`` of at most ``size`` characters, each ending at a
    paragraph break, else a line break, else a space in its second half when it has one."""
    n = len(text)
    pos = 0
    while pos < n:
        end = pos + size
        if end >= n:
            yield pos, n
            return
        half = pos + size // 2
        cut = -1
        for sep in ("\n\n", "\n", " ", "\t"):
            cut = text.rfind(sep, half, end)
            if cut >= 0:
                cut += len(sep)
                break
        if cut < 0:
            cut = end
        yield pos, cut
        pos = cut
