"""Split parsed sections into chunks that fit the embedding model, measured in its tokens.

A chunk never crosses a section (a heading or a page), prefers paragraph boundaries, then
sentence boundaries, then words, and repeats the tail of the previous chunk (``overlap``
tokens) so a sentence cut at a boundary is still found. Every chunk's text is a literal
slice of its section, so offsets point back into the document.

Token counts are the embedder's own (``count_tokens``). Counting a unit once and summing is
only an estimate (special tokens are counted per call, so the sum errs high), so each chunk
is counted again before it is accepted: no text longer than the limit ever reaches the model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.parsers.base import Section

TokenCounter = Callable[[str], int]

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32
# A heading longer than this (a breadcrumb of long titles) is cut for the embedded text.
MAX_HEADING_CHARS = 160

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    heading: str
    page: int | None
    start_char: int  # offsets into the document's extracted text (sections joined)
    end_char: int
    token_count: int  # of ``embed_text``

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
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


class Chunker:
    def __init__(
        self,
        count_tokens: TokenCounter,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    ) -> None:
        if chunk_tokens < 16:
            raise ValueError("chunk_tokens must be at least 16")
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = max(0, min(overlap_tokens, chunk_tokens // 4))

    def chunk(self, sections: list[Section]) -> list[Chunk]:
        chunks: list[Chunk] = []
        base = 0
        for section in sections:
            for start, end, tokens in self._split_section(section):
                chunks.append(
                    Chunk(
                        seq=len(chunks),
                        text=section.text[start:end],
                        heading=section.heading,
                        page=section.page,
                        start_char=base + start,
                        end_char=base + end,
                        token_count=tokens,
                    )
                )
            base += len(section.text)
        return chunks

    # -- one section ------------------------------------------------------------------

    def _split_section(self, section: Section) -> list[tuple[int, int, int]]:
        text = section.text
        if not text.strip():
            return []
        heading_tokens = (
            self.count_tokens(embed_text(section.heading, "")) if section.heading else 0
        )
        budget = self.chunk_tokens - heading_tokens
        if budget < self.chunk_tokens // 2:
            # A very long heading: give it no more than half the chunk.
            budget = self.chunk_tokens // 2
        units = self._units(text, 0, len(text), budget)
        return self._pack(section, units, budget)

    def _units(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        """Paragraphs that fit the budget; larger ones broken into sentences, then words.

        Pieces of a broken paragraph are kept below ``budget - overlap`` so that the overlap
        from the previous chunk still fits beside them.
        """
        units: list[_Unit] = []
        piece_budget = max(budget - self.overlap_tokens, budget // 2)
        for p_start, p_end in _spans(text, start, end, _PARAGRAPH_BREAK):
            tokens = self.count_tokens(text[p_start:p_end])
            if tokens <= budget:
                units.append(_Unit(p_start, p_end, tokens))
                continue
            for s_start, s_end in _spans(text, p_start, p_end, _SENTENCE_END):
                tokens = self.count_tokens(text[s_start:s_end])
                if tokens <= piece_budget:
                    units.append(_Unit(s_start, s_end, tokens))
                else:
                    units.extend(self._word_units(text, s_start, s_end, piece_budget))
        return units

    def _word_units(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        """Windows of whole words that fit; a single over-long "word" is cut by characters."""
        units: list[_Unit] = []
        words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
        i = 0
        while i < len(words):
            w_start, w_end = words[i]
            tokens = self.count_tokens(text[w_start:w_end])
            if tokens > budget:
                units.extend(self._char_units(text, w_start, w_end, budget))
                i += 1
                continue
            # Grow the window a word at a time; count tokens of the whole window so the
            # figure is exact. Doubling first keeps this to O(log n) counts per window.
            j = i + 1
            step = 8
            while j < len(words):
                k = min(j + step, len(words))
                count = self.count_tokens(text[w_start : words[k - 1][1]])
                if count > budget:
                    if step == 1:
                        break
                    step = max(1, step // 2)
                    continue
                j, tokens = k, count
                step *= 2
            units.append(_Unit(w_start, words[j - 1][1], tokens))
            i = j
        return units

    def _char_units(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        units: list[_Unit] = []
        pos = start
        while pos < end:
            lo, hi = pos + 1, end
            while lo < hi:  # the longest slice from pos that fits
                mid = (lo + hi + 1) // 2
                if self.count_tokens(text[pos:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            units.append(_Unit(pos, lo, self.count_tokens(text[pos:lo])))
            pos = lo
        return units

    def _pack(
        self, section: Section, units: list[_Unit], budget: int
    ) -> list[tuple[int, int, int]]:
        """Greedily fill chunks with whole units; start each with an overlap tail."""
        out: list[tuple[int, int, int]] = []
        text = section.text
        i = 0
        carry: list[_Unit] = []  # overlap from the previous chunk
        while i < len(units):
            current = list(carry)
            total = sum(u.tokens for u in current)
            added = 0
            while i + added < len(units) and total + units[i + added].tokens <= budget:
                total += units[i + added].tokens
                current.append(units[i + added])
                added += 1
            if added == 0:
                if carry:  # the overlap crowded out the next unit: drop it
                    carry = []
                    continue
                current = [units[i]]  # fits alone by construction of the units
                added = 1
            start, end = current[0].start, current[-1].end
            exact = self.count_tokens(embed_text(section.heading, text[start:end]))
            while exact > self.chunk_tokens and len(current) > 1:
                # The sum was an estimate; give the last unit back to the next chunk.
                if added > 1 or not carry:
                    current.pop()
                    added -= 1
                else:
                    current.pop(0)
                start, end = current[0].start, current[-1].end
                exact = self.count_tokens(embed_text(section.heading, text[start:end]))
            if exact > self.chunk_tokens:
                raise ValueError("chunker could not fit a unit into the token limit")
            out.append((start, end, exact))
            i += max(added, 1)
            carry = self._overlap(text, current, added)
        return out

    def _overlap(self, text: str, current: list[_Unit], added: int) -> list[_Unit]:
        if not self.overlap_tokens or added == 0:
            return []
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(current):
            if total + unit.tokens > self.overlap_tokens:
                break
            tail.insert(0, unit)
            total += unit.tokens
        if tail:
            return tail
        # The last unit is too big to repeat whole: repeat its last words instead.
        last = current[-1]
        words = [(m.start(), m.end()) for m in _WORD.finditer(text, last.start, last.end)]
        picked = 0
        for k in range(len(words) - 1, 0, -1):
            tokens = self.count_tokens(text[words[k][0] : last.end])
            if tokens > self.overlap_tokens:
                break
            picked = k
        if not picked:
            return []
        start = words[picked][0]
        return [_Unit(start, last.end, self.count_tokens(text[start : last.end]))]


def _spans(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-blank pieces of ``text[start:end]`` between separators, trimmed, as offsets."""
    spans: list[tuple[int, int]] = []
    pos = start
    for match in separator.finditer(text, start, end):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, end))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            trimmed.append((s, e))
    return trimmed
