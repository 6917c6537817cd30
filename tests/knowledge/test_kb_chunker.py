from __future__ import annotations

import itertools
import random

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
        assert chunk.token_count == COUNT(chunk.embed_text) <= limit
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
