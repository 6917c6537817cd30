"""Will a GGUF fit in this machine's memory at a context size? Said plainly before loading,
instead of failing inside llama.cpp.

The estimate: the weights (the file's size) + the KV cache in f16 (2 x layers x n_ctx x KV
width x 2 bytes) + a compute buffer of 10% of the weights (64 MB at least). It is compared
with the memory available now. The Settings dialog shows the same estimate (with the share on
the GPU for its layer count); the CLI and the Models page check it before switching.
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
    overhead_bytes: int = 0  # the compute buffer (included in needed_bytes)
    layers: int = 0  # layers in the model (0: unknown)
    offloaded: int = 0  # of them on the GPU, for the configured [model] gpu_layers

    @property
    def gpu_bytes(self) -> int:
        """Memory on the GPU: the offloaded layers' share of weights and cache, plus the
        compute buffer."""
        if not self.layers or not self.offloaded:
            return 0
        share = self.offloaded / self.layers
        return int((self.weights_bytes + self.kv_bytes) * share + self.overhead_bytes)

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


def _number(metadata: dict[str, Any], key: str, default: int = 0) -> int:
    arch = str(metadata.get("general.architecture", ""))
    value = metadata.get(f"{arch}.{key}", default)
    if isinstance(value, list):  # per-layer values in some models: take the largest
        value = max(value) if value else default
    return int(value or default)


def layer_count(metadata: dict[str, Any]) -> int:
    return _number(metadata, "block_count")


def kv_cache_bytes(metadata: dict[str, Any], n_ctx: int) -> int:
    layers = layer_count(metadata)
    embedding = _number(metadata, "embedding_length")
    heads = _number(metadata, "attention.head_count", 1) or 1
    kv_heads = _number(metadata, "attention.head_count_kv", heads) or heads
    head_dim = _number(metadata, "attention.key_length", embedding // heads if heads else 0)
    return 2 * layers * n_ctx * head_dim * kv_heads * 2


def parse_gpu_layers(setting: str, layers: int) -> int:
    """How many of ``layers`` go to the GPU for a ``[model] gpu_layers`` setting."""
    text = str(setting).strip().lower()
    if text in ("auto", "all", "-1"):
        return layers
    if text in ("0", "cpu", "none", ""):
        return 0
    try:
        return max(0, min(int(text), layers))
    except ValueError:
        return 0


def fit_from_metadata(
    metadata: dict[str, Any],
    weights: int,
    n_ctx: int,
    gpu_layers: str = "0",
    available: int | None = -1,
) -> Fit:
    """The estimate from a GGUF header's metadata and the weights' size in bytes."""
    kv = kv_cache_bytes(metadata, n_ctx)
    overhead = max(int(weights * 0.10), 64 * 1024**2)
    layers = layer_count(metadata)
    return Fit(
        needed_bytes=weights + kv + overhead,
        weights_bytes=weights,
        kv_bytes=kv,
        available_bytes=available_memory() if available == -1 else available,
        n_ctx=n_ctx,
        overhead_bytes=overhead,
        layers=layers,
        offloaded=parse_gpu_layers(gpu_layers, layers),
    )


def estimate_fit(
    path: Path | str,
    n_ctx: int,
    size: int | None = None,
    available: int | None = -1,
    gpu_layers: str = "0",
) -> Fit:
    """Reads only the header. ``size``: the weights' bytes when the file is split in shards;
    ``available``: the memory to compare with (default: what the machine has now)."""
    contents = read_gguf(path)
    weights = size if size is not None else Path(path).stat().st_size
    return fit_from_metadata(contents.metadata, weights, n_ctx, gpu_layers, available)
