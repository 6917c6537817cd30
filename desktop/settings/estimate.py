"""How much memory a GGUF needs at a context size and GPU layer count (an estimate).

Weights: the file's size, shared evenly across its layers. Context: the KV cache in f16,
2 (K and V) x layers x context x KV width x 2 bytes. Plus a compute buffer that llama.cpp
sizes by the context; we allow 10% of the weights (and 64 MB at least). Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.gguf_info import read_gguf

GB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    layers: int  # layers in the model
    offloaded: int  # layers on the GPU
    weights_bytes: int
    kv_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.overhead_bytes

    @property
    def gpu_bytes(self) -> int:
        if not self.layers or not self.offloaded:
            return 0
        share = self.offloaded / self.layers
        return int((self.weights_bytes + self.kv_bytes) * share + self.overhead_bytes)

    def describe(self, gpu: bool = True) -> str:
        total = self.total_bytes / GB
        if not gpu:
            return f"About {total:.2f} GB of RAM (this llama.cpp build runs on the CPU)."
        if not self.offloaded:
            return f"About {total:.2f} GB of RAM (weights + context); nothing on the GPU."
        where = "all" if self.offloaded >= self.layers else f"{self.offloaded} of"
        return (
            f"About {self.gpu_bytes / GB:.2f} GB of GPU memory ({where} {self.layers} layers), "
            f"{total:.2f} GB in all with the {self.kv_bytes / GB:.2f} GB context cache."
        )


def parse_gpu_layers(setting: str, layers: int) -> int:
    text = str(setting).strip().lower()
    if text in ("auto", "all", "-1"):
        return layers
    if text in ("0", "cpu", "none", ""):
        return 0
    try:
        return max(0, min(int(text), layers))
    except ValueError:
        return 0


def estimate_from_metadata(
    metadata: dict[str, Any], file_size: int, n_ctx: int, gpu_layers: str
) -> MemoryEstimate:
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
    kv_width = head_dim * kv_heads
    kv_bytes = 2 * layers * n_ctx * kv_width * 2
    overhead = max(int(file_size * 0.10), 64 * 1024**2)
    return MemoryEstimate(
        layers=layers,
        offloaded=parse_gpu_layers(gpu_layers, layers),
        weights_bytes=file_size,
        kv_bytes=kv_bytes,
        overhead_bytes=overhead,
    )


def estimate(path: str | Path, n_ctx: int, gpu_layers: str) -> MemoryEstimate:
    """Reads the GGUF's header (fast: no tensor data). Raises the models' typed errors."""
    contents = read_gguf(path)
    return estimate_from_metadata(contents.metadata, Path(path).stat().st_size, n_ctx, gpu_layers)
