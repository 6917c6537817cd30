"""The app end to end with the real embedded GGUF, and ``jackdaw gui --screenshot``."""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agent_core.cli_gui import VIEWS, register
from agent_core.services import Services
from desktop import screenshot
from models import library
from tests.desktop.conftest import last_card, send, wait_answer


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.timeout(600)  # a busy 2-core machine reads the ~750-token prompt slowly
def test_a_real_answer_streams_from_the_embedded_model(qtbot, make_app) -> None:
    def small(config) -> None:
        config.model.max_answer_tokens = 16
        config.model.temperature = 0.0

    app = make_app(configure=small, real_model=True)
    qtbot.waitUntil(lambda: app.model.state in ("ready", "failed"), timeout=120_000)
    assert app.model.state == "ready", app.model.error
    assert "Qwen2.5 Coder 0.5B Instruct · Q4_K_M" in app.window.model_label.text()
    send(qtbot, app, "What is the capital of France?")
    wait_answer(qtbot, app, timeout=420_000)
    card = last_card(app)
    trace = app.services.traces.get(card.trace_id)
    assert trace.status == "ok" and card.text().strip()
    assert trace.completion_tokens > 0
    assert app.window.speed_label.text().endswith("tokens/s")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("view", ["chat", "confirm", "settings", "models"])
def test_gui_screenshot_renders_a_view(
    tmp_path: Path, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library, "known_locations", list)  # not the real home's model folders
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / f"{view}.png"
    args = parser.parse_args(["gui", "--demo", "--screenshot", str(out), "--view", view])
    services = Services()
    try:
        assert args.handler(args, services) == 0
    finally:
        services.close()
    width, height = png_size(out)
    assert width > 400 and height > 300


def test_the_cli_offers_every_view_the_screenshot_renders() -> None:
    assert VIEWS == screenshot.VIEWS


def test_the_models_view_shows_the_list_and_the_model_in_use(qtbot, make_app, tmp_path) -> None:
    app = make_app([], load=False)
    app.models.adapter.locations = []  # never the real home folder's apps
    out = tmp_path / "models.png"
    assert screenshot.take_screenshot(app, str(out), "models") == 0
    page = app.models_page
    assert app.window.tabs.currentWidget() is page
    active = next(row for row in app.models.rows if row.active)
    assert page.selected_key() == active.key and page.name.text() == active.name
    assert page.fit.text().startswith("Needs about")  # its memory check came back in time
    assert png_size(out) == (app.window.width(), app.window.height())


def test_gui_screenshot_in_a_fresh_process(tmp_path: Path) -> None:
    """What the packaging smoke test runs: no demo data, no display, the real data folder."""
    out = tmp_path / "window.png"
    code = (
        "import argparse, sys\n"
        "from agent_core.cli_gui import register\n"
        "from agent_core.services import Services\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); s = Services()\n"
        "try: sys.exit(a.handler(a, s))\n"
        "finally: s.close()\n"
    )
    env_free = subprocess.run(
        [sys.executable, "-c", code, "gui", "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_free.returncode == 0, env_free.stderr
    assert png_size(out)[0] > 400
