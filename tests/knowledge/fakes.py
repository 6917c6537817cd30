"""A deterministic Embedder for unit tests: hashed bag of words, BERT-like token counts.

Texts sharing words get similar vectors, so search tests mean something; every call is
recorded so tests can assert what was (not) embedded.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Sequence

import numpy as np

_PIECE = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder:
    def __init__(
        self, dimension: int = 64, max_tokens: int = 512, model_id: str = "fake-bow-v1"
    ) -> None:
        self._dimension = dimension
        self._max_tokens = max_tokens
        self._model_id = model_id
        self.embedded: list[str] = []  # every text ever embedded, in order
        self.calls = 0
        self.lock = threading.Lock()
        # Tests can make embed() block or fail to simulate slow or broken models.
        self.before_embed: list[object] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        # Like WordPiece: [CLS] + [SEP], one piece per short word, more for long ones.
        return 2 + sum(max(1, math.ceil(len(p) / 6)) for p in _PIECE.findall(text))

    def token_pieces(self, text: str) -> list[bytes]:
        """The pieces ``count_tokens`` counts (without [CLS]/[SEP]), as llama.cpp shows them."""
        pieces: list[bytes] = []
        for word in _PIECE.findall(text):
            n = max(1, math.ceil(len(word) / 6))
            size = math.ceil(len(word) / n)
            pieces.extend(word[k : k + size].encode() for k in range(0, len(word), size))
        return pieces

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            n = self.count_tokens(text)
            if n > self._max_tokens:
                raise ValueError(f"text of {n} tokens exceeds max_tokens {self._max_tokens}")
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word[:6].encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self._dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign
            # A small constant component: no zero vectors, and all texts are a bit alike.
            out[row, 0] += 0.1
            out[row] /= np.linalg.norm(out[row])
        with self.lock:
            self.calls += 1
            self.embedded.extend(texts)
        return out

    def reset(self) -> None:
        with self.lock:
            self.embedded.clear()
            self.calls = 0
