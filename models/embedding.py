"""The seam between knowledge/ and whatever turns text into vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors.

    ``model_id`` identifies the exact model (name + sha256 of the weights): the knowledge base
    stores it and rebuilds the index when it changes. ``max_tokens`` is the longest input that
    may be passed; callers chunk to fit (``count_tokens``), and ``embed`` refuses longer input
    rather than letting the native library abort.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), float32, each row unit length."""
        ...
