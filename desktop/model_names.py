"""What the status bar and the lists call a chat model: a human name ("Qwen2.5 Coder 0.5B
Instruct · Q4_K_M"), never the raw GGUF ``general.name``. Plain Python (no Qt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.catalog import find_packaged
from models.library import name_from_filename


def configured_name(config: Any, known: dict[str, str] | None = None) -> str:
    """A human name for the configured chat model without reading the file (the main thread
    may call this): a packaged model's display name, a name the page already read, or one
    made from the file name ("Llama 3.2 3B Instruct · Q4_K_M")."""
    if config.model.backend == "openai":
        return f"{config.server.model or 'server'} at {config.server.base_url}"
    packaged = find_packaged(config.model.path)
    if packaged is not None:
        return packaged.display_name
    path = str(Path(config.model.path).expanduser())
    if known and path in known:
        return known[path]
    return name_from_filename(path)


def loaded_name(config: Any, info: Any) -> str:
    """The human name of what was loaded (reads the GGUF's header: workers only), never the
    raw ``general.name``; a backend that is no local file (a server, one handed in by a test
    or a plugin) is called what it calls itself."""
    from models.discovery import chat_model_label

    loaded = str(getattr(info, "path", "") or "")
    if config.model.backend == "local" and loaded and Path(loaded).is_file():
        return chat_model_label(loaded, read_file=True)  # an Ollama blob has no .gguf
    return str(getattr(info, "name", "") or "the model")
