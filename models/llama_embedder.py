"""An :class:`~models.embedding.Embedder` over llama-cpp-python's embedding mode.

Works for any GGUF embedding model (MiniLM, nomic-embed, bge, e5 ...): the pooling comes from
the file's own metadata. Two facts of llama.cpp shape this class:

* an input longer than the model's trained context can abort the whole process (a native
  assert, not an exception), so every text is tokenized and checked against ``max_tokens``
  before anything reaches the native side;
* a context is not thread-safe, so every call into it holds one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from models.errors import (
    JackdawError,
    ModelFileError,
    ModelLoadError,
    ModelNotFoundError,
    NotAGGUFError,
)
from models.gguf_info import file_sha256

_GGUF_MAGIC = b"GGUF"

# llama.h's enum llama_pooling_type (mirrored so this module imports llama_cpp lazily).
_POOLING_UNSPECIFIED = -1
_POOLING_NONE = 0
_POOLING_MEAN = 1
_POOLING_RANK = 4

# Texts are packed into one native decode up to this many tokens. Attention cost grows with
# the square of a decode's tokens, so packing pays only for short texts: on 2 cores it makes
# ~12-token queries ~35% faster, while packing two ~250-token chunks is ~15% slower than one.
_PACK_TOKENS = 256


class InputTooLongError(JackdawError, ValueError):
    """A text has more tokens than the embedding model accepts."""

    hint = "Split the text into shorter pieces (measure them with count_tokens) and embed those."


class NotAnEmbeddingModelError(ModelFileError):
    hint = (
        "Pick a GGUF embedding model (all-MiniLM, nomic-embed-text, bge, e5 ...), not a reranker."
    )


class LlamaCppEmbedder:
    """Embeds text with a local GGUF model; rows come back float32 and L2-normalised.

    ``n_threads=0`` lets llama.cpp choose. Keep ``n_ctx`` at 512 unless the model was trained
    for more: ``max_tokens`` never exceeds the model's trained context either way.
    Call :meth:`close` (or use ``with``) to free the model deterministically.
    """

    def __init__(
        self, path: Path | str, n_threads: int = 0, n_ctx: int = 512, flash_attn: bool = True
    ) -> None:
        self._path = Path(path)
        _check_gguf_file(self._path)
        self._lock = threading.Lock()
        self._pieces: list[bytes] | None = None  # token id -> piece, built on first use
        self._llama: Any = _load(self._path, n_threads, n_ctx, flash_attn, _POOLING_UNSPECIFIED)
        pooling = self._llama.pooling_type()
        if pooling == _POOLING_RANK:
            self.close()
            raise NotAnEmbeddingModelError(f"{self._path.name} is a reranker, not an embedder.")
        if pooling == _POOLING_NONE:
            # The file names no pooling (e.g. a chat model): llama.cpp would return one vector
            # per token. Mean pooling is the usual choice for such models.
            self.close()
            self._llama = _load(self._path, n_threads, n_ctx, flash_attn, _POOLING_MEAN)
        self._dimension = int(self._llama.n_embd())
        self._max_tokens = min(int(self._llama.n_ctx()), _trained_context(self._llama))

    # --- Embedder -----------------------------------------------------------------------------

    @cached_property
    def model_id(self) -> str:
        """``<file stem>@<first 16 hex digits of the file's sha256>``."""
        return f"{self._path.stem}@{file_sha256(self._path)[:16]}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def path(self) -> Path:
        return self._path

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` occupies, the model's own special tokens ([CLS], [SEP] ...) included."""
        with self._lock:
            return len(self._tokenize(text))

    def token_pieces(self, text: str) -> list[bytes]:
        """The content tokens of ``text`` (no special tokens), each as the bytes of its piece:
        lets a chunker tokenize once and cut by token positions."""
        with self._lock:
            llama = self._live()
            data = text.encode("utf-8", "surrogatepass")
            ids = llama.tokenize(data, add_bos=False, special=False)
            if self._pieces is None:
                self._pieces = _piece_table(llama)
            table = self._pieces
        return [table[i] for i in ids]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``, shape ``(len(texts), dimension)``.

        Raises :class:`InputTooLongError` (and embeds nothing) if any text is over
        ``max_tokens``.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not one string")
        if not texts:
            return np.empty((0, self._dimension), dtype=np.float32)
        with self._lock:
            counts = self._checked_token_counts(texts)
            llama = self._live()
            rows = [
                row
                for group in _packs(texts, counts, _PACK_TOKENS)
                for row in llama.embed(group, normalize=False, truncate=False)
            ]
        return _unit_rows(np.asarray(rows, dtype=np.float32))

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Free the native model and context now. Safe to call twice.

        llama-cpp-python frees them in ``Llama.__del__``, which can run after the native library
        is gone at interpreter exit (seen in frozen apps); closing explicitly avoids that.
        """
        with self._lock:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()

    def __enter__(self) -> LlamaCppEmbedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------

    def _live(self) -> Any:
        if self._llama is None:
            raise RuntimeError(f"{type(self).__name__} for {self._path.name} is closed")
        return self._llama

    def _tokenize(self, text: str) -> list[int]:
        # add_bos=True adds the special tokens the model expects around every input, exactly
        # as Llama.embed does, so the count is the one the context sees.
        return list(self._live().tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def _checked_token_counts(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text; raises before anything is embedded if one is too long."""
        counts = [len(self._tokenize(text)) for text in texts]
        for index, n_tokens in enumerate(counts):
            if n_tokens > self._max_tokens:
                raise InputTooLongError(
                    f"Text #{index} has {n_tokens} tokens; the embedding model "
                    f"{self._path.name} accepts at most {self._max_tokens}."
                )
        return counts


def _packs(texts: Sequence[str], counts: Sequence[int], budget: int) -> Iterator[list[str]]:
    """Consecutive runs of texts of at most ``budget`` tokens in all (a longer text runs
    alone), keeping the input order."""
    pack: list[str] = []
    used = 0
    for text, n_tokens in zip(texts, counts, strict=True):
        if pack and used + n_tokens > budget:
            yield pack
            pack, used = [], 0
        pack.append(text)
        used += n_tokens
    if pack:
        yield pack


def _piece_table(llama: Any) -> list[bytes]:
    """Every token's piece as llama.cpp prints it (special tokens print as nothing)."""
    import ctypes

    import llama_cpp

    vocab = llama._model.vocab
    size = 64
    buf = ctypes.create_string_buffer(size)
    table: list[bytes] = []
    for token in range(llama.n_vocab()):
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        if n < 0:  # a piece longer than the buffer: ask again with room for it
            big = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(vocab, token, big, -n, 0, False)
            table.append(big.raw[:n])
        else:
            table.append(buf.raw[:n])
    return table


def _check_gguf_file(path: Path) -> None:
    if not path.is_file():
        raise ModelNotFoundError(f"No embedding model file at {path}.")
    with path.open("rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise NotAGGUFError(f"{path} is not a GGUF file.")


def _load(path: Path, n_threads: int, n_ctx: int, flash_attn: bool, pooling: int) -> Any:
    # Imported here so that importing this module (e.g. for type checks or in the GUI) does not
    # load the native library.
    from llama_cpp import Llama

    threads = n_threads if n_threads > 0 else None
    try:
        return Llama(
            model_path=str(path),
            embedding=True,
            pooling_type=pooling,
            n_ctx=n_ctx,
            # A non-causal model must see a whole input in one micro-batch.
            n_batch=n_ctx,
            n_ubatch=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=flash_attn,
            verbose=False,
        )
    except ValueError as exc:  # llama-cpp-python's way of saying the native load failed
        raise ModelLoadError(f"Could not load the embedding model {path.name}: {exc}") from exc


def _trained_context(llama: Any) -> int:
    """The context the model was trained for: positions past it have no embedding, and
    llama.cpp asserts (killing the process) rather than raising if an input goes there."""
    import llama_cpp

    return int(llama_cpp.llama_model_n_ctx_train(llama.model))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (llama.cpp returns them unnormalised); an all-zero row stays zero
    rather than turning into NaNs."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
