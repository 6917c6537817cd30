"""Will a GGUF fit in this machine's memory at a context size? Said plainly before loading,
instead of failing inside llama.cpp.

The estimate: the weights (the file's size) + the KV cache in f16 (2 x layers x n_ctx x KV
width x 2 bytes) + a compute buffer of 10% of the weights (64 MB at least), as in
``desktop/settings/estimate.py``. It is compared with the memory available now.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.gguf_info import read_gguf

GB = 1024**3


@dataclass(frozen=True)
class Fit:
    needed_bytes: int
    weights_bytes: int
    kv_bytes: int
    available_bytes: int | None  # None: unknown on this platform
    n_ctx: int

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.needed_bytes <= self.available_bytes

    def describe(self) -> str:
        need = (
            f"needs about {self.needed_bytes / GB:.2f} GB of RAM at a {self.n_ctx}-token "
            f"context ({self.weights_bytes / GB:.2f} GB weights, {self.kv_bytes / GB:.2f} GB "
            "context cache)"
        )
        if self.available_bytes is None:
            return f"It {need}."
        have = f"{self.available_bytes / GB:.1f} GB are available"
        if self.fits:
            return f"It {need}; {have}."
        return (
            f"It will not fit: it {need}, and only {have}. Choose a smaller model or a "
            "smaller context ([model] n_ctx), or close other programs."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "needed_bytes": self.needed_bytes,
            "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes,
            "available_bytes": self.available_bytes,
            "n_ctx": self.n_ctx,
            "fits": self.fits,
        }


def available_memory() -> int | None:
    """Memory a new process can use now (Linux: MemAvailable; elsewhere: physical RAM)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def kv_cache_bytes(metadata: dict[str, Any], n_ctx: int) -> int:
    arch = str(metadata.get("general.architecture", ""))

    def number(key: str, default: int = 0) -> int:
        value = metadata.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer values in some models: take the largest
            value = max(value) if value else default
        return int(value or default)

    layers = number("block_count")
    embedding = number("embedding_length")
    heads = number("attention.head_count", 1) or 1
    kv_heads = number("attention.head_count_kv", heads) or heads
    head_dim = number("attention.key_length", embedding // heads if heads else 0)
    return 2 * layers * n_ctx * head_dim * kv_heads * 2


def estimate_fit(
    path: Path | str, n_ctx: int, size: int | None = None, available: int | None = -1
) -> Fit:
    """Reads only the header. ``size``: the weights' bytes when the file is split in shards;
    ``available``: the memory to compare with (default: what the machine has now)."""
    contents = read_gguf(path)
    weights = size if size is not None else Path(path).stat().st_size
    kv = kv_cache_bytes(contents.metadata, n_ctx)
    overhead = max(int(weights * 0.10), 64 * 1024**2)
    return Fit(
        needed_bytes=weights + kv + overhead,
        weights_bytes=weights,
        kv_bytes=kv,
        available_bytes=available_memory() if available == -1 else available,
        n_ctx=n_ctx,
    )
