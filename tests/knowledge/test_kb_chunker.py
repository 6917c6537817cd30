from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from knowledge.chunker import Chunker, embed_text
from knowledge.parsers.base import Section
from tests.knowledge.fakes import FakeEmbedder

COUNT = FakeEmbedder().count_tokens


def random_text(rng: random.Random, n_paragraphs: int) -> str:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "supercalifragilistic",
    ]
    paragraphs = []
    for _ in range(n_paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 12)):
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(1, 40)))
            sentences.append(sentence.capitalize() + rng.choice([".", "!", "?", ""]))
        paragraphs.append(" ".join(sentences))
    if rng.random() < 0.3:
        paragraphs.append("x" * rng.randint(500, 3000))  # a "word" longer than a chunk
    return "\n\n".join(paragraphs)


@pytest.mark.parametrize("seed", range(25))
def test_every_chunk_fits_and_is_a_literal_slice(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([32, 64, 128, 256])
    chunker = Chunker(COUNT, chunk_tokens=limit, overlap_tokens=limit // 8)
    sections = [
        Section(
            random_text(rng, rng.randint(1, 15)),
            heading=rng.choice(["", "A", "A > B > C"]),
            page=rng.choice([None, 1, 2]),
        )
        for _ in range(rng.randint(1, 4))
    ]
    chunks = chunker.chunk(sections)
    full = "".join(s.text for s in sections)
    assert chunks
    for i, chunk in enumerate(chunks):
        assert chunk.seq == i
        assert COUNT(chunk.embed_text) <= chunk.token_count <= limit
        assert full[chunk.start_char : chunk.end_char] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
    # Nothing is lost: every word of every section is inside some chunk of that section.
    for section in sections:
        covered = "".join(c.text for c in chunks if c.heading == section.heading)
        for word in set(section.text.split()):
            assert word.strip(".!?") in covered


def test_chunks_never_cross_sections_and_keep_heading_and_page() -> None:
    chunker = Chunker(COUNT, chunk_tokens=64, overlap_tokens=8)
    sections = [Section("one two three.", heading="H1", page=1), Section("four five.", page=2)]
    chunks = chunker.chunk(sections)
    assert [(c.text, c.heading, c.page) for c in chunks] == [
        ("one two three.", "H1", 1),
        ("four five.", "", 2),
    ]
    assert chunks[0].embed_text == embed_text("H1", "one two three.") == "H1\n\none two three."


def test_paragraphs_are_kept_whole_and_overlap_repeats_the_tail() -> None:
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(10)) + "." for i in range(12)]
    chunker = Chunker(COUNT, chunk_tokens=64, overlap_tokens=16)
    chunks = chunker.chunk([Section("\n\n".join(paragraphs))])
    assert len(chunks) > 2
    for chunk in chunks:
        # Chunk boundaries fall between paragraphs.
        assert chunk.text.split("\n\n")[0] in paragraphs
        assert chunk.text.split("\n\n")[-1] in paragraphs
    # Consecutive chunks share a paragraph (the overlap).
    for a, b in itertools.pairwise(chunks):
        assert a.text.split("\n\n")[-1] == b.text.split("\n\n")[0]


def test_long_paragraph_is_split_at_sentences_with_overlap() -> None:
    sentences = [" ".join(f"s{i}w{j}" for j in range(12)) + "." for i in range(20)]
    chunker = Chunker(COUNT, chunk_tokens=64, overlap_tokens=16)
    chunks = chunker.chunk([Section(" ".join(sentences))])
    assert len(chunks) >= 5
    for a, b in itertools.pairwise(chunks):
        assert b.start_char < a.end_char  # overlapping
    for chunk in chunks:
        assert chunk.text.endswith(".")


def test_blank_sections_give_no_chunks() -> None:
    assert Chunker(COUNT).chunk([Section("   \n\n  "), Section("")]) == []


# -- linear time on any text (issue 12) ------------------------------------------------------


class CountingEmbedder(FakeEmbedder):
    """Records how many characters the tokenizer was given, by either entry point."""

    def __init__(self) -> None:
        super().__init__()
        self.chars_tokenized = 0

    def count_tokens(self, text: str) -> int:
        self.chars_tokenized += len(text)
        return super().count_tokens(text)

    def token_pieces(self, text: str) -> list[bytes]:
        self.chars_tokenized += len(text)
        return super().token_pieces(text)


NASTY = {
    "one long word": "Q" * 120_000,
    "minified js": "var a=function(b){return b+1},c=[1,2,3].map(a);" * 2_500,
    "one-line json": '{"id":12,"tags":["x","y"],"name":"value \\u00e9"},' * 2_500,
    "log lines": "2024-05-01T12:00:00Z INFO GET /api/v1/items?id=42 200 12ms\n" * 2_000,
    "prose": ("The quick brown fox jumps over the lazy dog. " * 8 + "\n\n") * 300,
}


@pytest.mark.parametrize("name", sorted(NASTY))
@pytest.mark.parametrize("pieces", [True, False], ids=["token-pieces", "estimated"])
def test_tokenizer_work_is_linear_in_the_text(name: str, pieces: bool) -> None:
    """Every character reaches the tokenizer a bounded number of times (the old chunker
    binary-searched a long word by re-tokenizing ever longer slices: quadratic)."""
    embedder = CountingEmbedder()
    text = NASTY[name]
    chunker = Chunker(
        embedder.count_tokens, 64, 8, token_pieces=embedder.token_pieces if pieces else None
    )
    chunks = chunker.chunk([Section(text, heading="H")])
    assert chunks
    assert embedder.chars_tokenized <= 4 * len(text)
    for chunk in chunks:
        assert COUNT(chunk.embed_text) <= chunk.token_count <= 64
        assert text[chunk.start_char : chunk.end_char] == chunk.text


def fuzz_text(rng: random.Random) -> str:
    pieces = [
        "alpha",
        "Beta.",
        "naïve café",
        "ﬁnal",
        "東京は大きい。",
        "🙂🙂",
        "x" * rng.randint(1, 400),
        "\x00\x07",
        "\u200b",
        '{"k":[1,2]}',
        "\n\n",
        "\n",
        "  ",
        "İstanbul",
        "straße",
        "a\u0301",
    ]
    return "".join(
        rng.choice(pieces) + rng.choice(["", " ", "\n"]) for _ in range(rng.randint(1, 300))
    )


@pytest.mark.parametrize("seed", range(40))
def test_fuzz_chunks_fit_are_slices_and_lose_no_word(seed: int) -> None:
    rng = random.Random(1000 + seed)
    embedder = FakeEmbedder()
    limit = rng.choice([16, 32, 64])
    chunker = Chunker(
        embedder.count_tokens,
        limit,
        rng.choice([0, 4, 8]),
        token_pieces=embedder.token_pieces,
        window_chars=rng.choice([1024, 4096, 100_000]),
    )
    sections = [Section(fuzz_text(rng), heading=rng.choice(["", "Ω > B"])) for _ in range(2)]
    chunks = chunker.chunk(sections)
    full = "".join(s.text for s in sections)
    for chunk in chunks:
        assert COUNT(chunk.embed_text) <= chunk.token_count <= limit
        assert full[chunk.start_char : chunk.end_char] == chunk.text
    # Nothing is lost: every visible character lies inside some chunk.
    covered = bytearray(len(full))
    for chunk in chunks:
        covered[chunk.start_char : chunk.end_char] = b"\x01" * (chunk.end_char - chunk.start_char)
    lost = [
        ch
        for ch, hit in zip(full, covered, strict=True)
        if not hit and not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")
    ]
    assert not lost
