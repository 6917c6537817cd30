"""Question similarity: embeddings through the ``Embedder`` Protocol, stored as float32 blobs.

Vectors are unit length, so cosine similarity is a dot product. A question identical to a
stored one (after :func:`normalize_question`) scores 1.0 even with no embedder at all.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from models.embedding import Embedder
from models.errors import JackdawError

log = logging.getLogger("jackdaw.learning")

EmbedderSource = Embedder | Callable[[], Embedder | None] | None

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?.!]+$")


def normalize_question(text: str) -> str:
    """Case, spacing and closing punctuation do not make a different question."""
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip()).lower()


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class QuestionEncoder:
    """Embeds questions (short texts), remembering the last few.

    ``source`` is an :class:`Embedder`, a callable that builds one on first use (the
    composition root loads the model lazily), or None: then only identical questions match.
    """

    def __init__(self, source: EmbedderSource, cache_size: int = 128) -> None:
        self._source = source
        self._embedder: Embedder | None = None
        self._resolved = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder | None:
        if not self._resolved:
            source = self._source
            if source is not None and not isinstance(source, Embedder) and callable(source):
                try:
                    source = source()
                except JackdawError as exc:
                    # Learning helps answering; it must not stop it. Without vectors, only
                    # identical questions match until the embedding model is back.
                    log.warning("no embedder for the learning loop: %s", exc)
                    source = None
            self._embedder = source if isinstance(source, Embedder) else None
            self._resolved = True
        return self._embedder

    @property
    def model_id(self) -> str | None:
        embedder = self.embedder
        return embedder.model_id if embedder is not None else None

    def vector(self, text: str) -> np.ndarray | None:
        embedder = self.embedder
        if embedder is None:
            return None
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = embedder.embed([_fit(embedder, text)])[0].astype(np.float32)
        with self._lock:
            self._cache[text] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector

    def vectors(self, texts: list[str]) -> list[np.ndarray | None]:
        return [self.vector(t) for t in texts]


def _fit(embedder: Embedder, text: str) -> str:
    """The embedder refuses over-long input; a question that long is cut (its start decides)."""
    words = text.split()
    while len(words) > 8 and embedder.count_tokens(" ".join(words)) > embedder.max_tokens:
        words = words[: len(words) * 3 // 4]
    return " ".join(words)


def cosine(vector: np.ndarray | None, other: np.ndarray | None) -> float:
    if vector is None or other is None or vector.shape != other.shape:
        return 0.0
    return float(np.dot(vector, other))


def word_overlap(a: str, b: str) -> float:
    """Jaccard overlap of the words of two texts (for near-duplicate lessons without vectors)."""
    wa = set(re.findall(r"\w+", a.lower()))
    wb = set(re.findall(r"\w+", b.lower()))
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)
