"""`jackdaw models list|discover|use` in-process, with a fake home holding other apps' models
(never the real home folder), and the memory-fit check before switching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_core.cli import main
from agent_core.config import Config, Paths
from models import fit as fit_module
from models.catalog import DEFAULT_MODEL, SMOLLM2_135M
from models.discovery import tiny_chat_model
from models.download import CATALOGUE
from models.fit import GB, estimate_fit
from tests.models.test_discovery_library import write_gguf


@pytest.fixture(autouse=True)
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "LLAMA_CACHE", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(home / ".ollama" / "models"))
    return home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def saved_model_path() -> str:
    return Config.load(Paths.from_env().config_file).model.path


def test_list_shows_the_default_and_the_tiny_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["active"]["name"] == DEFAULT_MODEL.name
    rows = {row["name"]: row for row in data["models"]}
    assert rows["qwen2.5-coder-0.5b"]["default"] and rows["qwen2.5-coder-0.5b"]["active"]
    assert rows["smollm2-135m"]["status"] == "ready" and not rows["smollm2-135m"]["active"]
    assert rows["qwen2.5-coder-0.5b"]["licence"] == "Apache-2.0"
    # every model's expected speed, read from its entry in models/ (the page reads the same)
    for model in (DEFAULT_MODEL, SMOLLM2_135M):
        assert rows[model.name]["tok_s_2_cores"] == model.tok_s_2_cores > 0
    listed = {item["name"]: item for item in data["catalogue"]}
    assert {name: item["tok_s_2_cores"] for name, item in listed.items()} == {
        entry.name: entry.tok_s_2_cores for entry in CATALOGUE
    }
    code, out, _ = run(capsys, "models", "list")
    assert "* qwen2.5-coder-0.5b" in out and "Qwen2.5 Coder 0.5B Instruct · Q4_K_M (default)" in out
    for model in (DEFAULT_MODEL, SMOLLM2_135M, *CATALOGUE):
        line = next(line for line in out.splitlines() if line.lstrip(" *").startswith(model.name))
        details = out.splitlines()[out.splitlines().index(line) + 1]
        assert f"~{model.tok_s_2_cores:.0f} tok/s" in details, model.name


def test_discover_then_use_by_label(
    capsys: pytest.CaptureFixture[str], fake_home: Path, tmp_path: Path
) -> None:
    write_gguf(
        fake_home / ".lmstudio/models/bartowski/Llama-3.2-3B-Instruct-GGUF/"
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        arch="llama",
        basename="Llama-3.2",
        size_label="3B",
    )
    extra = tmp_path / "my-models"
    write_gguf(extra / "phi-mini.gguf", arch="phi3", basename="Phi-3", size_label="3.8B")
    code, out, _ = run(capsys, "models", "discover", "--folder", str(extra), "--json")
    assert code == 0
    found = {m["name"]: m for m in json.loads(out)["models"]}
    assert set(found) == {"Llama 3.2 3B Instruct · Q4_K_M", "Phi 3 3.8B Instruct · Q4_K_M"}
    assert found["Llama 3.2 3B Instruct · Q4_K_M"]["source"] == "LM Studio"
    assert found["Llama 3.2 3B Instruct · Q4_K_M"]["tools"] is True

    code, out, _ = run(capsys, "models", "discover")  # text: the name, source, features, path
    assert "Llama 3.2 3B Instruct · Q4_K_M  [LM Studio: bartowski/" in out and "1 found" in out

    code, out, _ = run(capsys, "models", "use", "Llama-3.2-3B-Instruct-Q4_K_M.gguf", "--json")
    assert code == 0, out
    used = json.loads(out)
    assert used["name"] == "Llama 3.2 3B Instruct · Q4_K_M" and used["fit"]["fits"]
    assert saved_model_path() == found["Llama 3.2 3B Instruct · Q4_K_M"]["path"]  # in place

    code, out, _ = run(capsys, "models", "discover", "--folder", str(extra), "--remember")
    assert Config.load(Paths.from_env().config_file).model.search_folders == [str(extra)]
    code, out, _ = run(capsys, "models", "discover", "--json")
    assert len(json.loads(out)["models"]) == 2  # the remembered folder is searched again


def test_use_a_packaged_model_by_name_and_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "use", "smollm2-135m")
    assert code == 0 and "Now using SmolLM2 135M Instruct · Q4_1." in out
    assert "needs about" in out and "GB are available" in out
    assert saved_model_path() == "smollm2-135m"
    code, out, _ = run(capsys, "models", "list", "--json")
    assert json.loads(out)["active"]["name"] == SMOLLM2_135M.name
    code, out, _ = run(capsys, "models", "use", "default", "--json")
    assert code == 0 and saved_model_path() == ""


def test_a_model_that_will_not_fit_is_refused_before_loading(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fit_module, "available_memory", lambda: 50 * 1024**2)
    code, _, err = run(capsys, "models", "use", "smollm2-135m")
    assert code == 2 and "will not fit" in err and "--force" in err
    assert saved_model_path() == ""  # unchanged
    code, _, err = run(capsys, "models", "use", "smollm2-135m", "--force")
    assert code == 0 and "may not fit" in err and saved_model_path() == "smollm2-135m"


def test_unknown_model_says_where_to_look(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "models", "use", "nothing-like-this")
    assert code == 2 and "jackdaw models discover" in err


def test_fit_estimate_of_the_tiny_model() -> None:
    fit = estimate_fit(tiny_chat_model(), n_ctx=4096, available=8 * GB)
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 -> 2 x 30 x 4096 x 192 x 2 bytes = 90 MiB
    assert fit.kv_bytes == 2 * 30 * 4096 * 192 * 2
    assert fit.weights_bytes == SMOLLM2_135M.size and fit.fits
    assert "needs about 0.2" in fit.describe() and "8.0 GB are available" in fit.describe()
    tight = estimate_fit(tiny_chat_model(), n_ctx=4096, available=10 * 1024**2)
    assert not tight.fits and tight.describe().startswith("It will not fit")


def test_pull_from_the_catalogue_then_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_core import cli_models
    from tests.models.test_discovery_download import FakeHub

    hub = FakeHub()
    hub.thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        entry = hub.entry("tiny-chat", tiny_chat_model().read_bytes())  # a real GGUF
        monkeypatch.setattr(cli_models, "CATALOGUE", (entry,))
        monkeypatch.setattr(cli_models, "catalogue_entry", lambda name: entry)
        code, out, _ = run(capsys, "models", "list", "--json")
        assert json.loads(out)["catalogue"][0]["downloaded"] is False
        code, _, err = run(capsys, "models", "use", "tiny-chat")
        assert code == 2 and "models pull tiny-chat --use" in err
        code, out, err = run(capsys, "models", "pull", "tiny-chat", "--use")
        assert code == 0, err
        assert "Downloaded tiny-chat · Q4_K_M" in out and "sha256 checked" in out
        assert "MB/s" in err  # progress with speed (and ETA) on stderr
        models_dir = Paths.from_env().models_dir
        assert saved_model_path() == str(models_dir / "downloads" / "tiny-chat.gguf")
        code, out, _ = run(capsys, "models", "list", "--json")
        listed = json.loads(out)["catalogue"][0]
        assert listed["downloaded"] and listed["active"]
    finally:
        hub.server.shutdown()
        hub.server.server_close()
