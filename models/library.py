"""The GGUF models the user already has: found in other apps' folders and used in place.

Looked for in the model folders of LM Studio, GPT4All, Jan, llama.cpp's download cache, the
Hugging Face hub cache and Ollama's blob store (a manifest per ``name:tag`` names the blob
that holds the GGUF), plus any folders the user adds. Each file's header is read (not its
weights) for the architecture, parameters, quantisation, trained context and whether its
chat template takes tools. Nothing is copied: Jackdaw loads the file where it is.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.catalog import PACKAGED_MODELS
from models.errors import JackdawError
from models.gguf_info import GGUFContents, quantization_name, read_gguf

MAX_DEPTH = 6  # below a models folder (LM Studio: publisher/repo/file)
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT_SUFFIX = re.compile(
    r"[-_.](i?q\d[\w]*|f16|f32|bf16|fp16)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Location:
    """A place where another app keeps GGUFs."""

    source: str  # "LM Studio", "Ollama" ...
    root: Path
    layout: str = "tree"  # tree (walk for *.gguf) | hf (hub cache) | ollama (manifests + blobs)


@dataclass(frozen=True)
class FoundModel:
    path: str  # what to load (the first shard of a split model)
    source: str
    label: str  # how that app names it: "llama3.2:1b", "Qwen/Qwen2.5-7B-Instruct-GGUF", a file name
    name: str  # a human name: "Qwen2.5 7B Instruct · Q4_K_M"
    architecture: str = ""
    parameters: int = 0
    quantization: str = ""
    context_length: int = 0
    size: int = 0  # bytes, all shards
    chat: bool = False  # has a chat template
    tools: bool = False  # the chat template takes tool specs
    kind: str = "chat"  # chat | embedding | projector | unreadable
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoundModel:
        return cls(**data)

    @property
    def usable(self) -> bool:
        return self.kind == "chat" and not self.error


# -- where to look -----------------------------------------------------------------------------
def known_locations(
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    platform: str | None = None,
) -> list[Location]:
    """Every folder other apps use for GGUFs on this platform (existing or not)."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    platform = sys.platform if platform is None else platform
    mac, win = platform == "darwin", platform == "win32"
    support = home / "Library" / "Application Support"
    local = Path(env.get("LOCALAPPDATA", home / "AppData" / "Local"))
    roaming = Path(env.get("APPDATA", home / "AppData" / "Roaming"))
    xdg_data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    xdg_cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")

    out = [
        Location("LM Studio", home / ".lmstudio" / "models"),
        Location("LM Studio", home / ".cache" / "lm-studio" / "models"),  # before 0.3
    ]
    if mac:
        out.append(Location("GPT4All", support / "nomic.ai" / "GPT4All"))
        out.append(Location("Jan", support / "Jan" / "data" / "llamacpp" / "models"))
    elif win:
        out.append(Location("GPT4All", local / "nomic.ai" / "GPT4All"))
        out.append(Location("Jan", roaming / "Jan" / "data" / "llamacpp" / "models"))
    else:
        out.append(Location("GPT4All", xdg_data / "nomic.ai" / "GPT4All"))
        out.append(Location("Jan", xdg_data / "Jan" / "data" / "llamacpp" / "models"))
    out.append(Location("Jan", home / "jan" / "models"))  # Jan before 0.6

    if env.get("LLAMA_CACHE"):
        llama_cache = Path(env["LLAMA_CACHE"])
    elif mac:
        llama_cache = home / "Library" / "Caches" / "llama.cpp"
    elif win:
        llama_cache = local / "llama.cpp"
    else:
        llama_cache = xdg_cache / "llama.cpp"
    out.append(Location("llama.cpp cache", llama_cache))

    if env.get("HF_HUB_CACHE"):
        hub = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hub = Path(env["HF_HOME"]) / "hub"
    else:
        hub = xdg_cache / "huggingface" / "hub"
    out.append(Location("Hugging Face cache", hub, "hf"))

    if env.get("OLLAMA_MODELS"):
        out.append(Location("Ollama", Path(env["OLLAMA_MODELS"]), "ollama"))
    out.append(Location("Ollama", home / ".ollama" / "models", "ollama"))
    if not (mac or win):
        out.append(Location("Ollama", Path("/usr/share/ollama/.ollama/models"), "ollama"))
    return out


# -- finding files -----------------------------------------------------------------------------
def _walk(root: Path, depth: int = MAX_DEPTH) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                if depth > 0:
                    yield from _walk(Path(entry.path), depth - 1)
            elif entry.name.lower().endswith(".gguf") and entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


def _tree_files(location: Location) -> Iterator[tuple[Path, str]]:
    for path in _walk(location.root):
        try:
            label = path.relative_to(location.root).as_posix()
        except ValueError:
            label = path.name
        yield path, label


def _hf_files(location: Location) -> Iterator[tuple[Path, str]]:
    try:
        repos = sorted(p for p in location.root.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo in repos:
        repo_id = repo.name.removeprefix("models--").replace("--", "/")
        snapshots = repo / "snapshots"
        revision = _hf_main_revision(repo)
        try:
            folders = sorted(snapshots.iterdir(), key=lambda p: (p.name != revision, p.name))
        except OSError:
            continue
        seen: set[str] = set()
        for folder in folders:  # the revision `main` points at first; older ones after
            for path in _walk(folder):
                rel = path.relative_to(folder).as_posix()
                if rel not in seen:
                    seen.add(rel)
                    yield path, f"{repo_id}/{rel}"


def _hf_main_revision(repo: Path) -> str:
    try:
        return (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _ollama_files(location: Location) -> Iterator[tuple[Path, str]]:
    manifests = location.root / "manifests"
    blobs = location.root / "blobs"
    for manifest in sorted(p for p in _walk_all(manifests) if p.is_file()):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        layers = data.get("layers") if isinstance(data, dict) else None
        for layer in layers or []:
            if not isinstance(layer, dict) or layer.get("mediaType") != OLLAMA_MODEL_LAYER:
                continue
            digest = str(layer.get("digest", ""))
            blob = blobs / digest.replace(":", "-")
            if blob.is_file():
                yield blob, _ollama_name(manifest.relative_to(manifests))


def _walk_all(root: Path, depth: int = 5) -> Iterator[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and depth > 0:
            yield from _walk_all(entry, depth - 1)
        else:
            yield entry


def _ollama_name(relative: Path) -> str:
    """registry.ollama.ai/library/llama3.2/1b -> llama3.2:1b; other namespaces keep theirs."""
    parts = relative.parts
    if len(parts) < 3:
        return relative.as_posix()
    *rest, model, tag = parts
    registry, namespace = [*rest, "", ""][:2]
    name = f"{model}:{tag}"
    if namespace and namespace != "library":
        name = f"{namespace}/{name}"
    if registry and registry != "registry.ollama.ai":
        name = f"{registry}/{name}"
    return name


def _files(location: Location) -> Iterator[tuple[Path, str]]:
    if location.layout == "hf":
        return _hf_files(location)
    if location.layout == "ollama":
        return _ollama_files(location)
    return _tree_files(location)


# -- describing --------------------------------------------------------------------------------
_CASING = {
    "smollm2": "SmolLM2",
    "smollm": "SmolLM",
    "smollm3": "SmolLM3",
    "qwen": "Qwen",
    "llama": "Llama",
    "gemma": "Gemma",
    "phi": "Phi",
    "mistral": "Mistral",
    "tinyllama": "TinyLlama",
    "deepseek": "DeepSeek",
    "granite": "Granite",
    "olmo": "OLMo",
    "gpt": "GPT",
    "lfm2": "LFM2",
}
_SIZE = re.compile(r"^\d+(\.\d+)?[bmk]$", re.IGNORECASE)


def _pretty_word(word: str) -> str:
    low = word.lower()
    for prefix, cased in sorted(_CASING.items(), key=lambda kv: -len(kv[0])):
        if low.startswith(prefix):
            return cased + word[len(prefix) :]
    if _SIZE.match(word):
        return word.upper()
    if word.islower():
        return word[:1].upper() + word[1:]
    return word


def _pretty(text: str) -> str:
    return " ".join(_pretty_word(w) for w in re.split(r"[-_ ]+", text) if w)


def human_name(metadata: Mapping[str, Any], path: Path, quantization: str, label: str = "") -> str:
    """ "SmolLM2 135M Instruct · Q4_1" rather than the raw ``general.name``."""
    size = path.stat().st_size if path.exists() else -1
    for model in PACKAGED_MODELS:
        if path.name == model.filename and size == model.size:
            return model.display_name
    stem = _SHARD.sub(".gguf", path.name)[: -len(".gguf")] if path.suffix else ""
    stem = _QUANT_SUFFIX.sub("", stem)
    basename = str(metadata.get("general.basename") or "")
    size_label = str(metadata.get("general.size_label") or "")
    finetune = str(metadata.get("general.finetune") or "")
    hints = " ".join([finetune, stem, label, str(metadata.get("general.name") or "")]).lower()
    if basename and size_label:
        words = [_pretty(basename), size_label.upper()]
        for kind in ("instruct", "chat", "coder", "it"):
            if re.search(rf"\b{kind}\b", hints) and kind not in " ".join(words).lower():
                words.append("Instruct" if kind == "it" else kind.capitalize())
                break
        base = " ".join(words)
    elif stem and not re.fullmatch(r"sha256-[0-9a-f]+", stem):
        base = _pretty(stem)
    else:
        base = _pretty(str(metadata.get("general.name") or label or path.name))
    return f"{base} · {quantization}" if quantization and quantization != "unknown" else base


def _template_takes_tools(template: str) -> bool:
    return bool(re.search(r"\btools\b|<tool_call>|\[AVAILABLE_TOOLS\]", template))


def describe(path: Path, source: str, label: str) -> FoundModel:
    """Read the header of one GGUF (and its other shards) into a :class:`FoundModel`."""
    try:
        contents = read_gguf(path)
    except (JackdawError, OSError) as exc:
        return FoundModel(
            str(path), source, label, path.name, kind="unreadable", error=str(exc).split("\n")[0]
        )
    meta = contents.metadata
    arch = str(meta.get("general.architecture", "unknown"))
    template = meta.get("tokenizer.chat_template")
    quant = quantization_name(contents)
    size, parameters = _shard_totals(path, contents)
    general_type = str(meta.get("general.type", "model"))
    if general_type in ("mmproj", "adapter") or arch == "clip":
        kind = "projector"
    elif arch in ("bert", "nomic-bert", "jina-bert-v2") or meta.get(f"{arch}.pooling_type"):
        kind = "embedding"
    else:
        kind = "chat"
    return FoundModel(
        path=str(path),
        source=source,
        label=label,
        name=human_name(meta, path, quant, label),
        architecture=arch,
        parameters=parameters,
        quantization=quant,
        context_length=int(meta.get(f"{arch}.context_length", 0) or 0),
        size=size,
        chat=isinstance(template, str),
        tools=isinstance(template, str) and _template_takes_tools(template),
        kind=kind,
    )


def _shard_totals(path: Path, first: GGUFContents) -> tuple[int, int]:
    match = _SHARD.search(path.name)
    if not match:
        return path.stat().st_size, first.parameters
    count = int(match.group(2))
    size, parameters = 0, 0
    for index in range(1, count + 1):
        shard = path.with_name(_SHARD.sub(f"-{index:05d}-of-{count:05d}.gguf", path.name))
        try:
            size += shard.stat().st_size
            parameters += (first if index == 1 else read_gguf(shard)).parameters
        except (JackdawError, OSError):
            continue
    return size, parameters


# -- all together ------------------------------------------------------------------------------
def discover(
    extra_folders: Iterable[str | Path] = (),
    locations: Iterable[Location] | None = None,
) -> list[FoundModel]:
    """Every GGUF in the known locations and ``extra_folders``, one entry per file (the first
    shard of a split model; the same file reached twice, e.g. through a link, once)."""
    places = list(known_locations() if locations is None else locations)
    places += [Location("folder", Path(f).expanduser()) for f in extra_folders]
    found: list[FoundModel] = []
    seen: set[str] = set()
    for location in places:
        if not location.root.is_dir():
            continue
        for path, label in _files(location):
            shard = _SHARD.search(path.name)
            if shard and int(shard.group(1)) != 1:
                continue
            try:
                key = str(path.resolve())
            except OSError:
                continue
            if key in seen:
                continue
            seen.add(key)
            found.append(describe(path, location.source, label))
    return found


def name_from_filename(path: str | Path) -> str:
    """A human name from a GGUF's file name alone (reads nothing but its size): what to show
    before its header has been read. "Llama-3.2-3B-Instruct-Q4_K_M.gguf" -> "Llama 3.2 3B
    Instruct · Q4_K_M"."""
    path = Path(path)
    if re.fullmatch(r"sha256-[0-9a-f]+", path.name):  # an Ollama blob: its name is a digest
        return f"a model from Ollama ({path.name[7:19]}…)"
    stem = _SHARD.sub(".gguf", path.name)
    stem = stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem
    quant = _QUANT_SUFFIX.search(stem)
    return human_name({}, path, quant.group(1).upper() if quant else "")
