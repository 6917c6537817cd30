"""Finding the GGUFs the user already has, laid out as each app lays them out: LM Studio,
GPT4All, Jan, llama.cpp's cache, the Hugging Face hub cache (snapshots linking to blobs),
Ollama (manifests naming content-addressed blobs), and folders the user adds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from models.discovery import tiny_chat_model
from models.library import (
    FoundModel,
    Location,
    _ollama_name,
    discover,
    human_name,
    known_locations,
)

QWEN_TEMPLATE = "{%- if tools %}<|im_start|>system\n# Tools{% endif %}<tool_call>"
PLAIN_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def write_gguf(
    path: Path,
    arch: str = "qwen2",
    basename: str = "Qwen2.5",
    size_label: str = "7B",
    finetune: str = "Instruct",
    template: str | None = QWEN_TEMPLATE,
    file_type: int = 15,  # Q4_K_M
    general_type: str = "model",
) -> Path:
    """A small but real GGUF (readable by gguf and by our header reader)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), arch)
    writer.add_type(general_type)
    writer.add_name(f"{basename} {size_label} {finetune}")
    writer.add_basename(basename)
    writer.add_size_label(size_label)
    writer.add_finetune(finetune)
    writer.add_file_type(file_type)
    writer.add_context_length(32768)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder with models laid out as each app keeps them."""
    h = tmp_path / "home"
    write_gguf(
        h / ".lmstudio/models/lmstudio-community/Qwen2.5-7B-Instruct-GGUF/"
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    )
    write_gguf(
        h / ".lmstudio/models/x/llava/mmproj-model-f16.gguf",
        arch="clip",
        general_type="mmproj",
        template=None,
    )
    write_gguf(
        h / ".local/share/nomic.ai/GPT4All/Meta-Llama-3-8B-Instruct.Q4_0.gguf",
        arch="llama",
        basename="Meta-Llama-3",
        size_label="8B",
        file_type=2,
        template="{{ tools }}",
    )
    write_gguf(
        h / ".local/share/Jan/data/llamacpp/models/gemma-2-2b/model.gguf",
        arch="gemma2",
        basename="gemma-2",
        size_label="2B",
        finetune="it",
        template=PLAIN_TEMPLATE,
    )
    write_gguf(
        h
        / ".cache/llama.cpp/bartowski_Llama-3.2-1B-Instruct-GGUF_Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        arch="llama",
        basename="Llama-3.2",
        size_label="1B",
    )
    # the Hugging Face hub cache: snapshots/<rev>/<file> links to blobs/<sha256>
    repo = h / ".cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B-Instruct-GGUF"
    blob = write_gguf(repo / "blobs" / ("ab" * 32), size_label="0.5B")
    snap = repo / "snapshots" / "c0ffee"
    snap.mkdir(parents=True)
    (snap / "qwen2.5-0.5b-instruct-q4_k_m.gguf").symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c0ffee")
    # Ollama: a manifest per name:tag, the GGUF as a content-addressed blob
    ollama = h / ".ollama/models"
    digest = "sha256:" + "cd" * 32
    write_gguf(
        ollama / "blobs" / digest.replace(":", "-"),
        arch="llama",
        basename="Llama-3.2",
        size_label="3B",
    )
    (ollama / "blobs" / ("sha256-" + "ef" * 32)).write_text("{}")  # the template layer
    manifest = ollama / "manifests/registry.ollama.ai/library/llama3.2/3b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "layers": [
                    {"mediaType": "application/vnd.ollama.image.model", "digest": digest},
                    {
                        "mediaType": "application/vnd.ollama.image.template",
                        "digest": "sha256:" + "ef" * 32,
                    },
                ],
            }
        )
    )
    # a split model: only the first shard is listed, with the size of all
    for i in (1, 2):
        write_gguf(h / f"Models/big-model-q4_k_m-0000{i}-of-00002.gguf", arch="llama")
    (h / "Models/notes.txt").write_text("not a model")
    (h / "Models/broken.gguf").write_bytes(b"GGUF" + b"\x03\x00\x00\x00")
    return h


def locations(home: Path) -> list[Location]:
    return known_locations(env={}, home=home, platform="linux")


def by_source(found: list[FoundModel]) -> dict[str, list[FoundModel]]:
    out: dict[str, list[FoundModel]] = {}
    for model in found:
        out.setdefault(model.source, []).append(model)
    return out


def test_each_apps_layout_is_found(home: Path) -> None:
    found = by_source(discover(extra_folders=[home / "Models"], locations=locations(home)))
    assert set(found) == {
        "LM Studio",
        "GPT4All",
        "Jan",
        "llama.cpp cache",
        "Hugging Face cache",
        "Ollama",
        "folder",
    }

    lm = {m.label: m for m in found["LM Studio"]}
    qwen = lm["lmstudio-community/Qwen2.5-7B-Instruct-GGUF/Qwen2.5-7B-Instruct-Q4_K_M.gguf"]
    assert qwen.name == "Qwen2.5 7B Instruct · Q4_K_M"
    assert (qwen.architecture, qwen.quantization, qwen.context_length) == ("qwen2", "Q4_K_M", 32768)
    assert qwen.chat and qwen.tools and qwen.usable and qwen.parameters == 128
    assert lm["x/llava/mmproj-model-f16.gguf"].kind == "projector"

    (gpt4all,) = found["GPT4All"]
    assert gpt4all.name == "Meta Llama 3 8B Instruct · Q4_0" and gpt4all.tools

    (jan,) = found["Jan"]
    assert jan.name == "Gemma 2 2B Instruct · Q4_K_M" and jan.chat and not jan.tools

    (cached,) = found["llama.cpp cache"]
    assert cached.name == "Llama 3.2 1B Instruct · Q4_K_M"

    (hf,) = found["Hugging Face cache"]
    assert hf.label == "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"
    assert hf.path.endswith("snapshots/c0ffee/qwen2.5-0.5b-instruct-q4_k_m.gguf")  # in place

    (ollama,) = found["Ollama"]
    assert ollama.label == "llama3.2:3b" and ollama.name == "Llama 3.2 3B Instruct · Q4_K_M"
    assert Path(ollama.path).parent.name == "blobs"

    folder = {Path(m.path).name: m for m in found["folder"]}
    assert set(folder) == {"big-model-q4_k_m-00001-of-00002.gguf", "broken.gguf"}
    shard = folder["big-model-q4_k_m-00001-of-00002.gguf"]
    assert shard.size == 2 * Path(shard.path).stat().st_size and shard.parameters == 256
    broken = folder["broken.gguf"]
    assert broken.kind == "unreadable" and broken.error and not broken.usable


def test_the_same_file_reached_twice_is_listed_once(home: Path) -> None:
    extra = home / "Models" / "again"
    extra.mkdir()
    lm_file = next((home / ".lmstudio").rglob("Qwen2.5-7B-Instruct-Q4_K_M.gguf"))
    (extra / "link.gguf").symlink_to(lm_file)
    found = discover(extra_folders=[extra], locations=locations(home))
    assert [m.path for m in found].count(str(lm_file)) == 1
    assert not any(m.path.endswith("link.gguf") for m in found)


def test_the_real_embedded_model_in_lm_studio_layout(tmp_path: Path) -> None:
    folder = tmp_path / ".lmstudio/models/simonw/SmolLM2"
    folder.mkdir(parents=True)
    shutil.copyfile(tiny_chat_model(), folder / "SmolLM2-135M-Instruct.Q4_1.gguf")
    (found,) = discover(locations=known_locations(env={}, home=tmp_path, platform="linux"))
    assert found.name == "SmolLM2 135M Instruct · Q4_1"  # the catalogue's name, not general.name
    assert (found.architecture, found.quantization, found.context_length) == ("llama", "Q4_1", 8192)
    assert 130e6 < found.parameters < 140e6 and found.chat and not found.tools
    assert FoundModel.from_dict(found.to_dict()) == found


def test_known_locations_follow_the_environment_and_platform(tmp_path: Path) -> None:
    env = {
        "LLAMA_CACHE": "/x/llama",
        "HF_HOME": "/x/hf",
        "OLLAMA_MODELS": "/x/ollama",
        "XDG_DATA_HOME": "/x/data",
    }
    linux = {(loc.source, str(loc.root)) for loc in known_locations(env, tmp_path, "linux")}
    assert ("llama.cpp cache", "/x/llama") in linux
    assert ("Hugging Face cache", "/x/hf/hub") in linux
    assert ("Ollama", "/x/ollama") in linux
    assert ("GPT4All", "/x/data/nomic.ai/GPT4All") in linux
    mac = {(loc.source, str(loc.root)) for loc in known_locations({}, tmp_path, "darwin")}
    assert ("GPT4All", f"{tmp_path}/Library/Application Support/nomic.ai/GPT4All") in mac
    assert ("llama.cpp cache", f"{tmp_path}/Library/Caches/llama.cpp") in mac


def test_ollama_names() -> None:
    assert _ollama_name(Path("registry.ollama.ai/library/llama3.2/latest")) == "llama3.2:latest"
    assert _ollama_name(Path("registry.ollama.ai/jmorgan/tiny/q4")) == "jmorgan/tiny:q4"
    assert (
        _ollama_name(Path("hf.co/bartowski/Qwen-GGUF/Q4_K_M")) == "hf.co/bartowski/Qwen-GGUF:Q4_K_M"
    )


def test_human_names_from_file_names_when_metadata_is_thin(tmp_path: Path) -> None:
    path = tmp_path / "tinyllama-1.1b-chat-v1.0.Q5_K_M.gguf"
    path.write_bytes(b"")
    assert human_name({}, path, "Q5_K_M") == "TinyLlama 1.1B Chat V1.0 · Q5_K_M"
