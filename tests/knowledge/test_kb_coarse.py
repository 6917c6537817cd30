from __future__ import annotations

import itertools

import numpy as np

from knowledge.coarse import CoarseIndex
from knowledge.vectors import sign_bits


def test_candidates_follow_hamming_distance_and_filters() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # embedders give unit vectors
    codes = sign_bits(vectors, None)
    index = CoarseIndex(64)
    index.add(list(range(1, 1501)), vectors[:1500], codes[:1500], "/a", "text")
    index.add(list(range(1501, 3001)), vectors[1500:], codes[1500:], "/b", "pdf")
    q, qv = codes[42].tobytes(), vectors[42]
    assert index.candidates(q, qv, 1, 1)[0] == 43  # its own code is nearest
    distances = np.unpackbits(codes ^ codes[42], axis=1).sum(axis=1)
    got = index.candidates(q, qv, 50, 50)
    assert len(set(got)) == 50
    assert max(distances[i - 1] for i in got) <= np.sort(distances)[49]
    # The int8 stage orders the survivors by cosine, up to int8 rounding.
    cos = vectors @ qv
    ordered = [cos[i - 1] for i in got]
    assert all(a >= b - 0.02 for a, b in itertools.pairwise(ordered))
    assert all(i > 1500 for i in index.candidates(q, qv, 20, 20, folder="/b"))
    assert all(i > 1500 for i in index.candidates(q, qv, 20, 20, types=["pdf"]))
    assert index.candidates(q, qv, 20, 20, folder="/nowhere") == []
    assert set(index.candidates(q, qv, 20, 20, allowed=np.array([5, 6, 7]))) == {5, 6, 7}


def test_remove_reuse_move_and_compaction() -> None:
    vectors = np.eye(2048, 64, dtype=np.float32)
    codes = sign_bits(vectors, None)
    index = CoarseIndex(64)
    index.add(list(range(2048)), vectors, codes, "/a", "text")
    index.remove(range(1, 2048))  # triggers compaction
    assert len(index) == 1
    assert index.candidates(codes[5].tobytes(), vectors[5], 10, 10) == [0]
    index.add([7], vectors[7:8], codes[7:8], "/a", "text")  # an id SQLite reused
    index.add([7], vectors[9:10], codes[9:10], "/a", "text")
    assert len(index) == 2
    index.set_folder([7], "/moved")
    assert index.candidates(codes[9].tobytes(), vectors[9], 5, 5, folder="/moved") == [7]
    assert index.candidates(codes[9].tobytes(), vectors[9], 5, 5, folder="/a") == [0]
