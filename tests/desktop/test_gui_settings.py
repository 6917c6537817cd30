"""Settings: values persist across a restart of the window, the API key never shows, a bad
GGUF shows an error (not a crash), and a model that cannot load says so in the status bar."""

from __future__ import annotations

from pathlib import Path

from desktop.settings.controller import SettingsController
from desktop.settings.estimate import estimate_from_metadata, parse_gpu_layers
from tests.desktop.conftest import close_app, last_card, send, wait_answer


def settings_of(app):
    dialog = app.open_settings()
    return dialog, dialog.findChild(SettingsController)


def test_settings_persist_across_a_restart(qtbot, make_app, memory_keyring) -> None:
    app = make_app([], load=False)
    reloads: list[bool] = []
    app.model.reload = lambda: reloads.append(True)
    dialog, _ = settings_of(app)
    dialog.n_ctx.setValue(8192)
    dialog.threads.setValue(3)
    dialog.set_gpu_layers("12")
    dialog.confirm_timeout.setValue(42)
    dialog.refine_idle.setValue(30)
    dialog.server_url.setText("http://127.0.0.1:9999/v1")
    dialog.server_model.setText("qwen2.5-7b")
    dialog.api_key.setText("sk-very-secret")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert reloads == [True]  # the model settings changed: the model is reloaded
    config_text = app.services.paths.config_file.read_text()
    assert "sk-very-secret" not in config_text  # the key went to the keychain only
    assert "sk-very-secret" in memory_keyring.secrets.values()
    close_app(app)

    again = make_app([], load=False)
    config = again.services.config
    assert (config.model.n_ctx, config.model.n_threads, config.model.gpu_layers) == (
        8192,
        3,
        "12",
    )
    assert config.tools.confirm_timeout_s == 42.0
    dialog, controller = settings_of(again)
    assert dialog.n_ctx.value() == 8192 and dialog.threads.value() == 3
    assert dialog.gpu_layers_text() == "12"
    assert dialog.confirm_timeout.value() == 42 and dialog.refine_idle.value() == 30
    assert dialog.server_model.text() == "qwen2.5-7b"
    assert dialog.api_key.text() == ""  # never shows the stored key ...
    qtbot.waitUntil(lambda: controller.key_stored)  # ... only that there is one
    assert "stored" in dialog.api_key.placeholderText()
    dialog.forget_key.click()
    qtbot.waitUntil(lambda: not controller.key_stored)
    assert "sk-very-secret" not in memory_keyring.secrets.values()


def test_a_bad_gguf_shows_an_error_not_a_crash(qtbot, make_app, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a model" * 100)
    app = make_app([], load=False)
    dialog, _ = settings_of(app)
    qtbot.waitUntil(lambda: dialog.meta.isVisible())  # the built-in model's metadata
    assert "Architecture" in dialog.meta.text()
    dialog.model_path.setText(str(bad))
    qtbot.waitUntil(lambda: "not a GGUF" in dialog.meta_error.text())
    assert not dialog.meta.isVisible()
    dialog.test_load.click()
    qtbot.waitUntil(lambda: dialog.test_load.isEnabled() and bool(dialog.test_result.text()))
    assert "not a GGUF" in dialog.test_result.text()
    assert dialog.test_result.property("role") == "error"
    dialog.model_path.setText(str(tmp_path / "missing.gguf"))
    qtbot.waitUntil(lambda: "not found" in dialog.meta_error.text())
    dialog.set_gpu_layers("lots")
    dialog.save_button.click()
    assert "GPU layers" in dialog.status.text() and dialog.isVisible()


def test_a_model_that_cannot_load_is_reported_in_the_status_bar(
    qtbot, make_app, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 8)  # cut short after the magic

    def use_bad_model(config) -> None:
        config.model.path = str(bad)

    app = make_app(configure=use_bad_model, real_model=True)
    qtbot.waitUntil(lambda: app.model.state == "failed", timeout=30_000)
    label = app.window.model_label
    assert "could not be loaded" in label.text()
    assert "incomplete" in label.toolTip()  # the typed error, with what to do next
    assert app.window.isVisible()
    # asking anyway says the same in the answer card instead of failing silently
    send(qtbot, app, "Hello?")
    wait_answer(qtbot, app)
    card = last_card(app)
    assert "incomplete" in card.status.text() and card.status.property("role") == "error"


def test_the_memory_estimate() -> None:
    metadata = {
        "general.architecture": "llama",
        "llama.block_count": 32,
        "llama.embedding_length": 4096,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
    }
    gb = 1024**3
    full = estimate_from_metadata(metadata, 4 * gb, 8192, "all")
    assert full.kv_bytes == 2 * 32 * 8192 * 1024 * 2  # 1 GiB of f16 K and V
    assert full.offloaded == 32 and full.gpu_bytes > 5 * gb
    half = estimate_from_metadata(metadata, 4 * gb, 8192, "16")
    assert half.gpu_bytes < full.gpu_bytes
    assert estimate_from_metadata(metadata, 4 * gb, 8192, "0").gpu_bytes == 0
    assert parse_gpu_layers("auto", 32) == 32 and parse_gpu_layers("99", 32) == 32
    assert "CPU" in full.describe(gpu=False)
