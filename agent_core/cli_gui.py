"""``jackdaw gui``: open the desktop app (``jackdaw`` with no arguments does the same).

``--screenshot PATH`` renders a view of the real app offscreen to a PNG and exits (docs, and
the packaging smoke test); ``--demo`` fills a temporary data folder with demo data first.
Qt is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# desktop.screenshot.VIEWS, repeated so that `jackdaw --help` imports no Qt (a test keeps the
# two the same).
VIEWS = ("chat", "knowledge", "learning", "permissions", "models", "settings", "confirm")


def gui_available() -> bool:
    """Whether ``jackdaw`` with no arguments can open a window here (else it chats in the
    terminal): Qt is installed and, on Linux, there is a display to show it on."""
    if importlib.util.find_spec("PySide6") is None:
        return False
    if sys.platform.startswith("linux"):
        return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    return True


def cmd_gui(args: argparse.Namespace, services: Any) -> int:
    """``jackdaw gui`` (and plain ``jackdaw``, whose namespace lacks the gui options)."""
    from desktop.app import run_gui

    shot = getattr(args, "screenshot", None)
    view = getattr(args, "view", "chat")
    screenshot = str(Path(shot).expanduser()) if shot else None
    if not getattr(args, "demo", False):
        return run_gui(services, screenshot=screenshot, view=view)
    from desktop.demo import build_demo

    with tempfile.TemporaryDirectory(prefix="jackdaw-demo-") as tmp:
        demo = build_demo(Path(tmp), type(services))
        try:
            return run_gui(demo, screenshot=screenshot, view=view)
        finally:
            demo.close()


def register(subparsers: Any) -> None:
    gui = subparsers.add_parser("gui", help="open the desktop app")
    gui.add_argument(
        "--screenshot", metavar="PATH", help="render a view to this PNG (offscreen) and exit"
    )
    gui.add_argument(
        "--view", choices=VIEWS, default="chat", help="which view --screenshot renders"
    )
    gui.add_argument("--demo", action="store_true", help="use demo data in a temporary data folder")
    gui.set_defaults(handler=cmd_gui)
