"""How much memory a GGUF needs at a context size and GPU layer count, as the Settings
dialog says it.

The estimate itself is ``models.fit`` (one estimate for the CLI, the Models page and this
dialog): the weights, the f16 KV cache and a compute buffer, compared with the memory the
machine has now. Here it is only worded, with the share on the GPU. Plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.fit import GB, Fit, fit_from_metadata, parse_gpu_layers
from models.gguf_info import read_gguf

__all__ = ["GB", "MemoryEstimate", "estimate", "estimate_from_metadata", "parse_gpu_layers"]


@dataclass(frozen=True)
class MemoryEstimate:
    fit: Fit

    @property
    def layers(self) -> int:
        return self.fit.layers

    @property
    def offloaded(self) -> int:
        return self.fit.offloaded

    @property
    def weights_bytes(self) -> int:
        return self.fit.weights_bytes

    @property
    def kv_bytes(self) -> int:
        return self.fit.kv_bytes

    @property
    def overhead_bytes(self) -> int:
        return self.fit.overhead_bytes

    @property
    def total_bytes(self) -> int:
        return self.fit.needed_bytes

    @property
    def gpu_bytes(self) -> int:
        return self.fit.gpu_bytes

    @property
    def fits(self) -> bool:
        return self.fit.fits

    def describe(self, gpu: bool = True) -> str:
        total = self.total_bytes / GB
        if not gpu:
            text = f"About {total:.2f} GB of RAM (this llama.cpp build runs on the CPU)."
        elif not self.offloaded:
            text = f"About {total:.2f} GB of RAM (weights + context); nothing on the GPU."
        else:
            where = "all" if self.offloaded >= self.layers else f"{self.offloaded} of"
            text = (
                f"About {self.gpu_bytes / GB:.2f} GB of GPU memory ({where} {self.layers} "
                f"layers), {total:.2f} GB in all with the {self.kv_bytes / GB:.2f} GB context "
                "cache."
            )
        available = self.fit.available_bytes
        if available is not None and not self.fits and not (gpu and self.offloaded):
            text += (
                f" It will not fit: only {available / GB:.1f} GB are available. Choose a "
                "smaller model or context, or close other programs."
            )
        return text


def estimate_from_metadata(
    metadata: dict[str, Any],
    file_size: int,
    n_ctx: int,
    gpu_layers: str,
    available: int | None = -1,
) -> MemoryEstimate:
    return MemoryEstimate(fit_from_metadata(metadata, file_size, n_ctx, gpu_layers, available))


def estimate(path: str | Path, n_ctx: int, gpu_layers: str) -> MemoryEstimate:
    """Reads the GGUF's header (fast: no tensor data). Raises the models' typed errors."""
    contents = read_gguf(path)
    return estimate_from_metadata(contents.metadata, Path(path).stat().st_size, n_ctx, gpu_layers)
