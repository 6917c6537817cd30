"""Read what a GGUF file says about itself, without loading it.

We parse the header, the metadata and the tensor table ourselves (streaming, no mmap), so a
file that is not a GGUF, or is cut short, gets a clear error before llama.cpp ever sees it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from models.errors import ModelNotFoundError, NotAGGUFError, TruncatedGGUFError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Arrays longer than this (token lists, merges) are skipped, not kept: nobody displays them.
MAX_KEPT_ARRAY = 64

# GGUF value types: id -> struct format (scalars); 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class ModelInfo:
    """What the user (and a trace) needs to know about a model."""

    path: str
    name: str
    architecture: str
    parameters: int
    quantization: str
    context_length: int
    file_size: int
    sha256: str = ""
    chat_template: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(**data)

    def describe(self) -> str:
        billions = self.parameters / 1e9
        size = f"{billions:.2f}B" if billions >= 1 else f"{self.parameters / 1e6:.0f}M"
        return (
            f"{self.name} ({self.architecture}, {size} parameters, {self.quantization}, "
            f"trained context {self.context_length}, {self.file_size / 1e6:.0f} MB)"
        )


class _Reader:
    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self.fh = fh
        self.path = path

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise TruncatedGGUFError(f"{self.path} ends in the middle of its header.")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def skip_strings(self, count: int) -> None:
        read, seek, length = self.fh.read, self.fh.seek, struct.Struct("<Q").unpack
        try:
            for _ in range(count):
                seek(length(read(8))[0], 1)
        except struct.error:
            raise TruncatedGGUFError(f"{self.path} ends in the middle of its header.") from None
        if self.fh.tell() > os.fstat(self.fh.fileno()).st_size:
            raise TruncatedGGUFError(f"{self.path} ends in the middle of its header.")

    def string(self) -> str:
        return self.read(self.unpack("<Q")).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.unpack("<I"), self.unpack("<Q")
            if item_type in _SCALARS and count > MAX_KEPT_ARRAY:
                self.read(struct.calcsize(_SCALARS[item_type]) * count)  # skip
                return f"<array of {count}>"
            if item_type == _STRING and count > MAX_KEPT_ARRAY:
                self.skip_strings(count)  # a vocabulary: 150,000 strings nobody reads here
                return f"<array of {count}>"
            items = [self.value(item_type) for _ in range(count)]
            return items if count <= MAX_KEPT_ARRAY else f"<array of {count}>"
        raise NotAGGUFError(f"{self.path} has an unknown metadata value type {vtype}.")


@dataclass(frozen=True)
class GGUFContents:
    metadata: dict[str, Any]
    tensor_types: dict[str, int]  # quantisation type name -> count
    parameters: int
    data_end: int  # the byte offset where the last tensor's data ends


def read_gguf(path: Path | str) -> GGUFContents:
    """Parse the header, metadata and tensor table; check the data is all there."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"Model file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        reader = _Reader(fh, path)
        if fh.read(4) != GGUF_MAGIC:
            raise NotAGGUFError(f"{path} is not a GGUF file (it does not start with 'GGUF').")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise NotAGGUFError(f"{path} is GGUF version {version}; llama.cpp reads versions 2-3.")
        n_tensors, n_kv = reader.unpack("<Q"), reader.unpack("<Q")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"))
        tensor_types: dict[str, int] = {}
        parameters = 0
        tensor_end = 0
        for _ in range(n_tensors):
            reader.string()  # name
            dims = [reader.unpack("<Q") for _ in range(reader.unpack("<I"))]
            qtype, offset = reader.unpack("<I"), reader.unpack("<Q")
            elements = 1
            for d in dims:
                elements *= d
            parameters += elements
            try:
                type_name = GGMLQuantizationType(qtype).name
                block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
                tensor_end = max(tensor_end, offset + elements // block * block_bytes)
            except (ValueError, KeyError):
                type_name = f"type{qtype}"
            tensor_types[type_name] = tensor_types.get(type_name, 0) + 1
        alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        data_start = -(-fh.tell() // alignment) * alignment
    data_end = data_start + tensor_end
    if data_end > size:
        raise TruncatedGGUFError(
            f"{path} is truncated: its tensors need {data_end:,} bytes but the file has {size:,}."
        )
    return GGUFContents(metadata, tensor_types, parameters, data_end)


def quantization_name(contents: GGUFContents) -> str:
    file_type = contents.metadata.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if not contents.tensor_types:
        return "unknown"
    return max(contents.tensor_types.items(), key=lambda kv: kv[1])[0]


# sha256 digests by file identity (path, size, mtime, inode), for the life of the process:
# the one place a model file is hashed, so a load checks a file once, not once per caller.
_sha_cache: dict[tuple[str, int, int, int], str] = {}


def _file_key(path: Path | str) -> tuple[str, int, int, int]:
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file, computed once per identity (path, size, mtime, inode)."""
    key = _file_key(path)
    if key not in _sha_cache:
        digest = hashlib.sha256()
        with open(key[0], "rb") as fh:
            while chunk := fh.read(4 << 20):
                digest.update(chunk)
        _sha_cache[key] = digest.hexdigest()
    return _sha_cache[key]


def known_sha256(path: Path | str) -> str | None:
    """The digest already computed for this exact file in this process, if any."""
    try:
        return _sha_cache.get(_file_key(path))
    except OSError:
        return None


def remember_sha256(path: Path | str, digest: str) -> None:
    """Record a digest computed elsewhere (while the file was written)."""
    _sha_cache[_file_key(path)] = digest


def forget_sha256s() -> None:
    """Tests: hash again, as a new process would."""
    _sha_cache.clear()


def model_info(path: Path | str, with_sha256: bool = True) -> ModelInfo:
    path = Path(path)
    contents = read_gguf(path)
    meta = contents.metadata
    arch = str(meta.get("general.architecture", "unknown"))
    return ModelInfo(
        path=str(path.resolve()),
        name=str(meta.get("general.name") or path.stem),
        architecture=arch,
        parameters=contents.parameters,
        quantization=quantization_name(contents),
        context_length=int(meta.get(f"{arch}.context_length", 0) or 0),
        file_size=os.path.getsize(path),
        sha256=file_sha256(path) if with_sha256 else "",
        chat_template=isinstance(meta.get("tokenizer.chat_template"), str),
    )
