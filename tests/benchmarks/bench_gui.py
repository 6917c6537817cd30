"""Benchmark (a script, not a test): does the desktop app's main thread stay responsive?

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/bench_gui.py [--real]

1. **Start-up to a visible window**, from source: a fresh ``python`` process that imports the
   app, builds ``Services`` and the window on a fresh data folder, shows it, and prints when
   the window has been exposed and painted (the model is *not* loaded yet: it loads in the
   background afterwards). Wall time from spawning the process, median of 5. Target 1.5 s.

2. **Main-thread stall while streaming an answer.** A 10 ms ``QTimer`` on the main thread
   records how late each tick fires while the app streams a long Markdown answer (with code)
   into the chat, and while it indexes a folder of 400 files into a knowledge base (the
   hash-embedding fake from the knowledge tests, so the figure is the GUI's, not the
   embedder's). Lateness = time between ticks minus 10 ms. Target: p99 <= 50 ms.
   The scripted backend streams a ~1,000-word answer one character at a time, a character
   every ``--pace-ms`` (1 ms: ~1,000 pieces a second, well above any local model's rate, so
   the GUI re-renders as often as it ever will); ``--real`` streams from the embedded GGUF.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STARTUP_CHILD = r"""
import os, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from PySide6.QtCore import QCoreApplication, QTimer
from agent_core.services import Services
from desktop.app import Jackdaw, application
app = application()
jackdaw = Jackdaw(Services())
jackdaw.start(load_model=False)
painted = []
def check():
    if jackdaw.window.isVisible() and jackdaw.window.windowHandle().isExposed():
        jackdaw.window.repaint()
        painted.append(time.perf_counter())
        app.quit()
    else:
        QTimer.singleShot(1, check)
QTimer.singleShot(0, check)
app.exec()
print(f"{painted[0] - t0:.4f}")
jackdaw.shutdown()
"""


def startup(runs: int) -> dict[str, float]:
    walls, inside = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "JACKDAW_HOME": home, "QT_QPA_PLATFORM": "offscreen"}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", STARTUP_CHILD, str(ROOT)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            walls.append(time.perf_counter() - started)
            inside.append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "wall_median_s": statistics.median(walls),
        "in_process_median_s": statistics.median(inside),
        "wall_max_s": max(walls),
    }


class StallMeter:
    """A 10 ms timer on the main thread; records how late each tick is."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000
        self.late_ms: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late_ms.append(max(0.0, (now - self.last - self.interval) * 1000))
        self.last = now

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        data = sorted(self.late_ms)
        if not data:
            return {}
        return {
            "ticks": len(data),
            "p50_ms": data[len(data) // 2],
            "p99_ms": data[min(len(data) - 1, int(len(data) * 0.99))],
            "max_ms": data[-1],
        }


def wait(app, condition, timeout: float) -> None:
    from PySide6.QtCore import QEventLoop

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's work did not finish in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def long_answer(tokens: int) -> str:
    para = (
        "The **keeper** trims the wick, polishes the lens and logs the weather; "
        "`oil` is measured in gallons. "
    )
    code = "\n```python\nfor night in range(365):\n    lamp.light()\n```\n"
    text = ""
    while len(text.split()) < tokens:
        text += para * 3 + "\n\n- item one\n- item two\n" + code + "\n"
    return text


def stall_streaming(real: bool, tokens: int, pace_ms: float) -> dict[str, float]:
    from agent_core.services import Services
    from desktop.app import Jackdaw, application
    from tests.fakes import ScriptedBackend, final

    class PacedBackend(ScriptedBackend):
        def chat(self, messages, settings, **kwargs):  # type: ignore[no-untyped-def]
            on_text = kwargs.get("on_text")

            def paced(piece: str) -> None:
                time.sleep(pace_ms / 1000)
                if on_text is not None:
                    on_text(piece)

            kwargs["on_text"] = paced
            return super().chat(messages, settings, **kwargs)

    app = application()
    with tempfile.TemporaryDirectory() as home:
        os.environ["JACKDAW_HOME"] = home
        services = Services()
        if real:
            services.config.model.max_answer_tokens = tokens
        else:
            services.__dict__["chat_backend"] = PacedBackend([final(long_answer(tokens))])
        jackdaw = Jackdaw(services)
        jackdaw.start(load_model=False)
        wait(app, lambda: not jackdaw.tasks.busy, 10)
        jackdaw.model.load()
        wait(app, lambda: jackdaw.model.state in ("ready", "failed"), 300)
        meter = StallMeter()
        meter.start()
        started = time.perf_counter()
        question = "Write a long story about a lighthouse keeper." if real else "Tell me"
        jackdaw.chat.send(question)
        wait(app, lambda: not jackdaw.chat.busy, 600)
        seconds = time.perf_counter() - started
        result = meter.stop()
        card = jackdaw.window.chat.transcript.cards()[-1]
        result["answer_chars"] = len(card.text())
        result["seconds"] = round(seconds, 2)
        jackdaw.window.close()
        jackdaw.shutdown()
        services.close()
    return result


def stall_indexing(files: int) -> dict[str, float]:
    from agent_core.services import Services
    from desktop.app import Jackdaw, application
    from knowledge import open_knowledge_base
    from tests.knowledge.fakes import FakeEmbedder

    app = application()
    with tempfile.TemporaryDirectory() as home:
        os.environ["JACKDAW_HOME"] = home
        docs = Path(home) / "docs"
        docs.mkdir()
        for i in range(files):
            body = "\n\n".join(
                f"## Part {j}\n\n" + f"Note {i} talks about lighthouses, lamps and tides. " * 12
                for j in range(4)
            )
            (docs / f"note-{i:04}.md").write_text(f"# Note {i}\n\n{body}\n")
        kb = open_knowledge_base(Path(home) / "knowledge.db", FakeEmbedder())
        services = Services()
        services.__dict__["knowledge"] = kb
        jackdaw = Jackdaw(services)
        jackdaw.start(load_model=False)
        wait(app, lambda: not jackdaw.tasks.busy, 10)
        jackdaw.window.show_page(jackdaw.knowledge_page)
        meter = StallMeter()
        meter.start()
        started = time.perf_counter()
        jackdaw.knowledge.add_folder(str(docs))
        wait(app, lambda: jackdaw.knowledge.busy, 30)
        wait(app, lambda: not jackdaw.knowledge.busy, 600)
        result = meter.stop()
        result["seconds"] = round(time.perf_counter() - started, 2)
        result["files"] = files
        jackdaw.window.close()
        jackdaw.shutdown()
        services.close()
        kb.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", action="store_true", help="stream from the embedded GGUF")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--pace-ms", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args()

    print("start-up to a visible window (s):", _fmt(startup(args.startup_runs)))
    print("stall while streaming:", _fmt(stall_streaming(args.real, args.tokens, args.pace_ms)))
    print("stall while indexing:", _fmt(stall_indexing(args.files)))
    return 0


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


if __name__ == "__main__":
    sys.exit(main())
