"""The Models page: the models other apps keep (a fake home laid out as each app does, from
tests/models), downloads from a fake Hub on 127.0.0.1 with progress and Cancel, clear errors,
"Use this model" after the memory check, and the status bar's human name."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from desktop.panels.models import ModelsController, ModelsPage
from desktop.panels.models_adapter import (
    CATALOGUED,
    FOUND,
    PACKAGED,
    progress_words,
    size_words,
)
from models import fit as fit_module
from models.catalog import DEFAULT_MODEL, SMOLLM2_135M
from models.download import CatalogueEntry, DownloadProgress
from models.gguf_info import ModelInfo
from models.library import discover
from tests.desktop.conftest import WAIT_MS
from tests.fakes import ScriptedBackend
from tests.models import test_discovery_download as download_tests
from tests.models import test_discovery_library as library_tests
from tests.models.test_discovery_download import FakeHub
from tests.models.test_discovery_library import locations, write_gguf

# The fixtures of the models tests, reused: `home` (other apps' folders holding small real
# GGUFs) and `hub` (the Hub's download API on 127.0.0.1), under the names given here.
apps_home = library_tests.home
fake_hub = download_tests.hub


def models_page(qtbot: Any, app: Any, home: Path | None = None) -> tuple[ModelsPage, Any]:
    """Show the Models page (looking only in ``home``, laid out as each app keeps models)."""
    controller: ModelsController = app.models
    controller.adapter.locations = locations(home) if home is not None else []
    app.window.show_page(app.models_page)
    qtbot.waitUntil(lambda: bool(controller.rows) and not controller.loading, timeout=WAIT_MS)
    return app.models_page, controller


def row_texts(page: ModelsPage, key: str) -> list[str]:
    item = page.item_for(key)
    assert item is not None, key
    return [item.text(c) for c in range(item.columnCount())]


def select(qtbot: Any, page: ModelsPage, controller: Any, key: str) -> None:
    assert page.select(key)
    qtbot.waitUntil(lambda: key in controller.fits or page.message.isVisible(), timeout=WAIT_MS)


def real_gguf(tmp_path: Path, name: str, padding: int) -> bytes:
    """A small real GGUF (a Llama 3.2 3B header) followed by ``padding`` bytes, so that a
    download takes long enough to show progress and to be cancelled."""
    path = write_gguf(
        tmp_path / f"{name}.gguf", arch="llama", basename="Llama-3.2", size_label="3B"
    )
    return path.read_bytes() + bytes(padding)


def test_the_list_shows_installed_catalogue_and_found_models(
    qtbot, make_app, apps_home: Path
) -> None:
    app = make_app([], load=False)
    app.services.config.model.search_folders = [str(apps_home / "Models")]
    page, controller = models_page(qtbot, app, apps_home)

    expected = [m for m in discover([apps_home / "Models"], locations(apps_home)) if m.usable]
    found = [r for r in controller.rows if r.group == FOUND]
    assert sorted(r.path for r in found) == sorted(m.path for m in expected)
    assert {r.source for r in found} == {m.source for m in expected}
    for model in expected:  # the human name and the app it came from, in the list
        texts = row_texts(page, model.path)
        assert texts[0] == f"{model.name}  — {model.source}"
        assert texts[-1] == "ready (in place)"
    # a projector and a broken file are not offered as chat models
    assert not any("mmproj" in r.path or r.path.endswith("broken.gguf") for r in found)
    ollama = next(r for r in found if r.source == "Ollama")
    assert ollama.name == "Llama 3.2 3B Instruct · Q4_K_M" and ollama.label == "llama3.2:3b"

    # the built-in ones, the default in use
    default = row_texts(page, f"{PACKAGED}:{DEFAULT_MODEL.name}")
    assert default[0] == f"{DEFAULT_MODEL.display_name} (default)" and default[-1] == "in use"
    assert row_texts(page, f"{PACKAGED}:{SMOLLM2_135M.name}")[0] == SMOLLM2_135M.display_name
    for model in (DEFAULT_MODEL, SMOLLM2_135M):  # their speed: the figure models/ keeps
        assert (
            row_texts(page, f"{PACKAGED}:{model.name}")[3] == f"~{model.tok_s_2_cores:.0f} tokens/s"
        )
        item = page.item_for(f"{PACKAGED}:{model.name}")
        assert item is not None and item.toolTip(3) == model.speed_basis
    assert "Qwen2.5 Coder 0.5B" in page.active.text()
    # the catalogue: size, memory, speed, licence and whether it is downloaded
    entry = controller.adapter.catalogue[0]
    size, ram, speed, licence, state = row_texts(page, f"{CATALOGUED}:{entry.name}")[1:]
    assert size == size_words(entry.size) and ram == f"~{entry.ram_gb:.1f} GB"
    assert speed == f"~{entry.tok_s_2_cores:.0f} tokens/s" and licence == entry.licence
    item = page.item_for(f"{CATALOGUED}:{entry.name}")
    assert item is not None and item.toolTip(3) == entry.speed_basis
    assert state == "not downloaded"
    # the embedding model, with the rebuild warning
    assert "all-MiniLM-L6-v2" in page.embedding.text()
    assert "rebuilds the index" in page.embedding.text()

    # selecting a catalogue model says what it needs before anything is downloaded
    select(qtbot, page, controller, f"{CATALOGUED}:{entry.name}")
    assert page.download.isVisible() and not page.use.isVisible()
    assert f"{entry.ram_gb:.1f} GB" in page.fit.text()


def test_a_download_shows_progress_and_ends_in_the_list(
    qtbot, make_app, fake_hub: FakeHub, tmp_path: Path
) -> None:
    data = real_gguf(tmp_path, "llama-3b", 3_000_000)
    entry = fake_hub.entry("llama-3b", data)
    fake_hub.delay_s = 0.01
    app = make_app([], load=False)
    app.models.adapter.catalogue = (entry,)
    page, controller = models_page(qtbot, app)
    key = f"{CATALOGUED}:{entry.name}"
    assert row_texts(page, key)[-1] == "not downloaded"
    select(qtbot, page, controller, key)
    seen: list[int] = []
    page.progress.valueChanged.connect(seen.append)
    page.download.click()
    qtbot.waitUntil(lambda: "MB/s" in page.progress_label.text(), timeout=WAIT_MS)
    assert page.cancel.isVisible() and not page.download.isVisible()
    assert row_texts(page, key)[-1].startswith("downloading, ")
    qtbot.waitUntil(lambda: controller.download_task is None, timeout=WAIT_MS)

    assert seen and seen[-1] == 1000 and seen == sorted(seen)  # it moved forward, to the end
    path = app.services.paths.models_dir / "downloads" / entry.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert row_texts(page, key)[-1] == "downloaded" and page.selected_key() == key
    assert "Downloaded" in page.message.text() and "sha256" in page.message.text()
    assert not page.progress.isVisible() and page.use.isVisible() and page.use.isEnabled()
    assert not page.download.isVisible()
    # the list read again from disk (another session) still has it
    controller.rows = []
    controller.refresh()
    qtbot.waitUntil(lambda: bool(controller.rows), timeout=WAIT_MS)
    assert controller.row(key).downloaded and controller.row(key).path == str(path)


def test_cancel_stops_the_download_and_download_resumes(
    qtbot, make_app, fake_hub: FakeHub, tmp_path: Path
) -> None:
    data = real_gguf(tmp_path, "slow", 3_000_000)
    entry = fake_hub.entry("slow", data)
    fake_hub.delay_s = 0.05
    app = make_app([], load=False)
    app.models.adapter.catalogue = (entry,)
    page, controller = models_page(qtbot, app)
    key = f"{CATALOGUED}:{entry.name}"
    select(qtbot, page, controller, key)
    page.download.click()
    qtbot.waitUntil(lambda: page.progress.value() > 0, timeout=WAIT_MS)
    page.cancel.click()
    qtbot.waitUntil(lambda: controller.download_task is None, timeout=WAIT_MS)

    assert "cancelled" in page.message.text() and "resumes" in page.message.text()
    partial = app.services.paths.models_dir / "downloads" / f".{entry.filename}.partial"
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    assert not (partial.parent / entry.filename).exists()
    assert row_texts(page, key)[-1] == "not downloaded"
    assert page.download.isVisible() and page.download.isEnabled()
    assert not page.progress.isVisible()

    fake_hub.delay_s = 0.0
    fake_hub.requests.clear()
    page.download.click()
    qtbot.waitUntil(lambda: controller.download_task is None, timeout=WAIT_MS)
    assert [r for m, _, r in fake_hub.requests if m == "GET"] == [f"bytes={kept}-"]
    assert row_texts(page, key)[-1] == "downloaded"


def test_download_errors_say_what_happened(
    qtbot, make_app, fake_hub: FakeHub, tmp_path: Path
) -> None:
    bad = fake_hub.entry("tampered", real_gguf(tmp_path, "tampered", 1000), sha256="0" * 64)
    good = fake_hub.entry("fine", real_gguf(tmp_path, "fine", 1000))
    offline = CatalogueEntry(**{**good.to_dict(), "name": "offline", "repo": "test-org/none"})
    app = make_app([], load=False)
    app.models.adapter.catalogue = (bad, offline)
    page, controller = models_page(qtbot, app)

    select(qtbot, page, controller, f"{CATALOGUED}:tampered")
    page.download.click()
    qtbot.waitUntil(lambda: controller.download_task is None, timeout=WAIT_MS)
    assert "failed" in page.message.text() and "sha256" in page.message.text()
    assert page.message.property("role") == "error"
    assert not list((app.services.paths.models_dir / "downloads").glob("*tampered*"))

    fake_hub.server.shutdown()  # the Hub is gone: offline
    fake_hub.server.server_close()
    select(qtbot, page, controller, f"{CATALOGUED}:offline")
    page.download.click()
    qtbot.waitUntil(lambda: controller.download_task is None, timeout=WAIT_MS)
    assert "Could not reach" in page.message.text() and "offline" in page.message.text()
    assert page.message.property("role") == "error"


class LoadedBackend(ScriptedBackend):
    """What loading a GGUF gives, without llama.cpp: the file's path and its raw name."""

    def __init__(self, path: str, raw_name: str) -> None:
        super().__init__([])
        self.path, self.raw_name = path, raw_name

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.path, self.raw_name, "llama", 128, "Q4_K_M", 32768, 1024)


def test_use_this_model_switches_and_the_status_bar_names_it(
    qtbot, make_app, apps_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app([], load=True)
    qtbot.waitUntil(lambda: app.model.state == "ready", timeout=WAIT_MS)
    loads: list[str] = []

    def reload_model() -> None:  # what Services.reload_model does, with a fake load
        app.services.__dict__.pop("agent", None)
        path = app.services.config.model.path
        loads.append(path)
        app.services.__dict__["chat_backend"] = LoadedBackend(path, "llama3.2-raw-general-name")

    monkeypatch.setattr(app.services, "reload_model", reload_model)
    page, controller = models_page(qtbot, app, apps_home)
    ollama = next(r for r in controller.rows if r.source == "Ollama")

    # not enough memory: the warning comes first, and nothing changes until "Use anyway"
    monkeypatch.setattr(fit_module, "available_memory", lambda: 1024)
    select(qtbot, page, controller, ollama.key)
    assert "will not fit" in page.fit.text() and page.fit.property("role") == "error"
    assert page.use.text() == "Use anyway"
    controller.fits.clear()  # a click before the check had finished: checked, not switched
    controller.use(ollama.key)
    qtbot.waitUntil(lambda: ollama.key in controller.fits, timeout=WAIT_MS)
    assert app.services.config.model.path == "" and not loads
    page.use.click()  # now the user has seen it
    qtbot.waitUntil(lambda: app.services.config.model.path == ollama.path, timeout=WAIT_MS)

    qtbot.waitUntil(lambda: app.model.state == "ready" and loads == [ollama.path], timeout=WAIT_MS)
    label = app.window.model_label
    qtbot.waitUntil(lambda: label.text() == f"Model: {ollama.name}", timeout=WAIT_MS)
    assert "raw-general-name" not in label.toolTip() and ollama.name in label.toolTip()
    assert "loaded, ready" in page.message.text()
    saved = app.services.paths.config_file.read_text()
    assert ollama.path in saved  # in config.toml, used in place (the Ollama blob)
    assert row_texts(page, ollama.key)[-1] == "in use"
    assert row_texts(page, f"{PACKAGED}:{DEFAULT_MODEL.name}")[-1] == "ready"
    assert ollama.name in page.active.text()
    assert not app.window.chat.banner.isVisible()  # no longer the small built-in model


def test_the_chat_banner_opens_the_models_page(qtbot, make_app) -> None:
    app = make_app([], load=False)
    app.models.adapter.locations = []
    assert app.window.chat.banner.isVisible()
    app.window.chat.pick_model_requested.emit()
    assert app.window.tabs.currentWidget() is app.models_page
    qtbot.waitUntil(lambda: bool(app.models.rows), timeout=WAIT_MS)


def test_the_status_bar_names_a_configured_file_before_and_after_loading(
    qtbot, make_app, apps_home: Path
) -> None:
    gguf = next((apps_home / ".lmstudio").rglob("Qwen2.5-7B-Instruct-Q4_K_M.gguf"))

    def use_it(config: Any) -> None:
        config.model.path = str(gguf)

    app = make_app(backend=LoadedBackend(str(gguf), "qwen2.5-7b-raw"), configure=use_it, load=False)
    label = app.window.model_label
    assert label.text().startswith("Model: Qwen2.5 7B Instruct · Q4_K_M")  # from the file name
    app.model.load()
    qtbot.waitUntil(lambda: app.model.state == "ready", timeout=WAIT_MS)
    assert label.text() == "Model: Qwen2.5 7B Instruct · Q4_K_M"  # read from its header
    assert "raw" not in label.toolTip()


def test_sizes_and_progress_in_words() -> None:
    assert [size_words(n) for n in (0, 1500, 98_362_432, 986_000_000, 1_930_000_000)] == [
        "—",
        "2 KB",
        "98 MB",
        "986 MB",
        "1.9 GB",
    ]
    assert progress_words(DownloadProgress("m", 312_000_000, 986_000_000, 12_300_000)) == (
        "312 of 986 MB · 12.3 MB/s · about 54 s left"
    )
    assert progress_words(DownloadProgress("m", 0, 986_000_000, 0.0)) == "0 of 986 MB · starting…"
    slow = DownloadProgress("m", 100_000_000, 2_000_000_000, 1_000_000)
    assert progress_words(slow).endswith("about 32 min left")


def test_settings_use_the_one_estimate_of_models_fit(qtbot, make_app, apps_home: Path) -> None:
    from desktop.settings.controller import SettingsController
    from desktop.settings.estimate import estimate, estimate_from_metadata
    from models.fit import estimate_fit
    from models.gguf_info import read_gguf

    blob = next((apps_home / ".ollama/models/blobs").glob("sha256-cd*"))
    shown, fit = estimate(blob, 8192, "0"), estimate_fit(blob, 8192)
    assert (shown.total_bytes, shown.kv_bytes, shown.weights_bytes) == (
        fit.needed_bytes,
        fit.kv_bytes,
        fit.weights_bytes,
    )
    tight = estimate_from_metadata(read_gguf(blob).metadata, 4 * 1024**3, 8192, "0", 1024**3)
    assert not tight.fits and "It will not fit: only 1.0 GB" in tight.describe(gpu=False)

    def use_blob(config: Any) -> None:
        config.model.path = str(blob)

    app = make_app([], configure=use_blob, load=False)
    dialog = app.open_settings()
    assert dialog.findChild(SettingsController) is not None
    qtbot.waitUntil(lambda: dialog.meta.isVisible(), timeout=WAIT_MS)
    assert "Llama 3.2 3B Instruct · Q4_K_M" in dialog.meta.text()  # not general.name
    assert "Llama-3.2" not in dialog.meta.text()
    assert "GB of RAM" in dialog.estimate.text()


def test_a_file_of_ones_own_is_listed_and_used_in_place(
    qtbot, make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = write_gguf(tmp_path / "mine" / "Phi-3-mini-Q4_K_M.gguf", arch="phi3", basename="Phi-3")
    embedder = write_gguf(tmp_path / "mine" / "embed.gguf", arch="bert", template=None)
    app = make_app([], load=False)
    reloads: list[bool] = []
    monkeypatch.setattr(app.model, "reload", lambda: reloads.append(True))
    page, controller = models_page(qtbot, app)

    page.file_opened.emit(str(embedder))
    qtbot.waitUntil(page.message.isVisible, timeout=WAIT_MS)
    assert "embedding model" in page.message.text() and controller.row(str(embedder)) is None

    page.file_opened.emit(str(mine))
    qtbot.waitUntil(lambda: page.selected_key() == str(mine), timeout=WAIT_MS)
    assert row_texts(page, str(mine))[0] == "Phi 3 7B Instruct · Q4_K_M  — Your file"
    qtbot.waitUntil(lambda: str(mine) in controller.fits, timeout=WAIT_MS)
    page.use.click()
    qtbot.waitUntil(lambda: reloads == [True], timeout=WAIT_MS)
    assert app.services.config.model.path == str(mine)
    # read again (as after a restart): the model in use is listed although no app keeps it
    controller.adapter.files.clear()
    controller.rows = []
    controller.refresh()
    qtbot.waitUntil(lambda: bool(controller.rows), timeout=WAIT_MS)
    assert row_texts(page, str(mine))[-1] == "in use"


def test_a_change_in_settings_shows_on_the_page(qtbot, make_app, tmp_path: Path) -> None:
    embedder = write_gguf(
        tmp_path / "e5-small-Q8_0.gguf",
        arch="bert",
        basename="e5-small",
        size_label="33M",
        template=None,
    )
    app = make_app([], load=False)
    app.model.reload = lambda: None
    page, _ = models_page(qtbot, app)
    assert row_texts(page, f"{PACKAGED}:{DEFAULT_MODEL.name}")[-1] == "in use"
    dialog = app.open_settings()
    dialog.model_path.setText(SMOLLM2_135M.name)
    dialog.embedding_path.setText(str(embedder))
    dialog.save_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert row_texts(page, f"{PACKAGED}:{SMOLLM2_135M.name}")[-1] == "in use"
    assert row_texts(page, f"{PACKAGED}:{DEFAULT_MODEL.name}")[-1] == "ready"
    qtbot.waitUntil(lambda: "E5 Small" in page.embedding.text(), timeout=WAIT_MS)
    assert "rebuilds the index" in page.embedding.text()


def test_a_model_that_cannot_load_says_so_on_the_page(qtbot, make_app, tmp_path: Path) -> None:
    broken = tmp_path / "Broken-7B-Q4_K_M.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 8)  # cut short after the magic
    header_only = write_gguf(tmp_path / "Qwen2.5-7B-Instruct-Q4_K_M.gguf")  # no weights
    app = make_app([], load=False)
    page, controller = models_page(qtbot, app)
    page.file_opened.emit(str(broken))
    qtbot.waitUntil(page.message.isVisible, timeout=WAIT_MS)
    assert "cannot be read" in page.message.text() and controller.row(str(broken)) is None

    page.file_opened.emit(str(header_only))
    qtbot.waitUntil(lambda: str(header_only) in controller.fits, timeout=WAIT_MS)
    page.use.click()  # the real loader: llama.cpp refuses a file without its tensors
    qtbot.waitUntil(lambda: app.model.state == "failed", timeout=30_000)
    assert "could not be loaded" in page.message.text()
    assert page.message.property("role") == "error"
    assert app.window.model_label.text().startswith("Model: Qwen2.5 7B Instruct · Q4_K_M could")
