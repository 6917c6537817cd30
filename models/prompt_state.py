"""The model's state after reading the stable start of a prompt, kept on disk.

Every question starts with the same system prompt and tool specs (about 800 tokens for the
default model), and reading them takes ~9 s on two CPU cores. llama.cpp keeps that work in
memory between turns of one process, but each ``jackdaw ask`` and each start of the app would
read it again. This saves the KV cache of that start to a small file (~10 MB) once and loads it
in milliseconds afterwards.

A file is named by a hash of the model file's identity, the llama-cpp-python version, the
context size and the exact tokens, so a changed prompt, model or library never loads a stale
state; the tokens stored in the file are compared again on load. The files are a cache: a
failed save (full disk, read-only folder) is logged and answering goes on; only the newest few
are kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("jackdaw.models")

SUFFIX = ".kv"
KEEP_FILES = 8
# Below this many tokens, reading the prompt is cheaper than a file.
MIN_TOKENS = 64


def model_identity(path: Path | str, n_ctx: int) -> str:
    """The model file by its sha256 when it was checked in this process (a pinned model: the
    same file in any folder), else by path, size and modification time."""
    import llama_cpp

    from models.gguf_info import known_sha256

    resolved = Path(path).resolve()
    digest = known_sha256(resolved)
    if digest:
        return f"{llama_cpp.__version__}|sha256:{digest}|{n_ctx}"
    stat = resolved.stat()
    return f"{llama_cpp.__version__}|{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}"


def seed_folders() -> list[Path]:
    """Read-only states made when Jackdaw was installed (``jackdaw models warm --into``), so
    even the first question after installing need not read the prompt's start; in the
    packaged app, the ones its build made (``packaging/build.py``)."""
    return [Path(getattr(sys, "_MEIPASS", sys.prefix)) / "share" / "jackdaw" / "prompt-states"]


class PromptStates:
    """Saved KV states of prompt starts for one model: written to ``folder``, read from it or
    from the read-only ``seeds``."""

    def __init__(
        self, folder: Path, identity: str, keep: int = KEEP_FILES, seeds: Sequence[Path] = ()
    ) -> None:
        self.folder = folder
        self.identity = identity
        self.keep = keep
        self.seeds = tuple(seeds)

    def path_for(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(self.identity.encode("utf-8"))
        digest.update(b"|" + ",".join(map(str, tokens)).encode("ascii"))
        return self.folder / (digest.hexdigest()[:32] + SUFFIX)

    def _saved(self, tokens: Sequence[int]) -> Path | None:
        name = self.path_for(tokens).name
        for folder in (self.folder, *self.seeds):
            if (folder / name).is_file():
                return folder / name
        return None

    def has(self, tokens: Sequence[int]) -> bool:
        return self._saved(tokens) is not None

    def load(self, ctx: Any, tokens: Sequence[int]) -> bool:
        """Put the saved state for exactly ``tokens`` into sequence 0 of ``ctx``.

        False when there is none or it does not match; sequence 0 may then have been cleared,
        so the caller reads the prompt from the start.
        """
        import llama_cpp

        path = self._saved(tokens)
        if path is None:
            return False
        out = (llama_cpp.llama_token * len(tokens))()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            ctx, str(path).encode(), 0, out, len(tokens), ctypes.byref(count)
        )
        if not read or count.value != len(tokens) or list(out) != list(tokens):
            log.info("Ignoring a saved prompt state that does not match: %s", path.name)
            with contextlib.suppress(OSError):
                path.unlink()
            return False
        with contextlib.suppress(OSError):
            os.utime(path)  # newest used is kept longest
        return True

    def save(self, ctx: Any, tokens: Sequence[int]) -> None:
        """Write sequence 0 of ``ctx`` (which holds exactly ``tokens``); never raises."""
        import llama_cpp

        path = self.path_for(tokens)
        partial = path.with_suffix(f".{os.getpid()}.part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            array = (llama_cpp.llama_token * len(tokens))(*tokens)
            written = llama_cpp.llama_state_seq_save_file(
                ctx, str(partial).encode(), 0, array, len(tokens)
            )
            if not written:
                raise OSError("llama.cpp wrote nothing")
            os.replace(partial, path)
        except OSError as exc:
            log.warning("Could not save the prompt state (answers are just slower): %s", exc)
            with contextlib.suppress(OSError):
                partial.unlink()
            return
        self._prune()

    def _prune(self) -> None:
        try:
            files = sorted(
                self.folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True
            )
            for old in files[self.keep :]:
                old.unlink()
        except OSError:
            pass  # a file another process just removed, or a read-only folder: harmless


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
