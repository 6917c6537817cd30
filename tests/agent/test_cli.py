"""The CLI end to end, in a subprocess, with JACKDAW_HOME in a temp dir and the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_core import __version__
from agent_core.cli import print_sources, trace_result
from agent_core.traces import Trace
from models.catalog import DEFAULT_MODEL
from models.gguf_info import model_info
from models.library import describe
from tests.models.test_discovery_library import write_gguf


def jackdaw(
    *args: str, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        # The test's JACKDAW_HOME; and never the developer's real OS keychain.
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )


def test_version() -> None:
    done = jackdaw("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"jackdaw {__version__}"


@pytest.mark.real_model
def test_ask_json_then_traces(jackdaw_home: Path) -> None:
    done = jackdaw("ask", "What is the capital of France?", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON object on stdout
    for key in ("answer", "trace_id", "steps", "prompt_tokens", "completion_tokens", "model"):
        assert key in result
    assert result["answer"] and result["steps"] >= 1 and result["prompt_tokens"] > 0
    assert result["model_path"].endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")  # default
    assert result["model"] == DEFAULT_MODEL.display_name  # not its header's "... AWQ"
    assert (jackdaw_home / "memory.db").exists()

    listing = json.loads(jackdaw("traces", "list", "--json").stdout)
    assert [t["id"] for t in listing["traces"]] == [result["trace_id"]]
    shown = json.loads(jackdaw("traces", "show", result["trace_id"], "--json").stdout)
    assert shown["id"] == result["trace_id"] and len(shown["steps"]) == result["steps"]
    step = shown["steps"][0]
    assert step["messages"][0]["role"] == "system" and step["raw_output"]
    assert shown["model"]["sha256"] and shown["settings"]["seed"] == 42
    text = jackdaw("traces", "show", result["trace_id"][:6])
    assert text.returncode == 0 and "step 0" in text.stdout


def test_ask_json_names_the_model_as_the_lists_do(tmp_path: Path) -> None:
    """`ask --json`'s "model": the human name, not the GGUF's general.name; "model_path": the
    file. The name stays once the file is gone (`traces show` of an old run)."""
    gguf = write_gguf(
        tmp_path / "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        arch="llama",
        basename="Llama-3.2",
        size_label="3B",
    )
    recorded = model_info(gguf).to_dict()
    trace = Trace(question="hi", model=recorded, settings={}, status="ok", final_answer="Hello.")
    listed = describe(gguf, "file", gguf.name).name  # what the Models page and status bar show
    result = trace_result(trace)
    assert result["model"] == listed != recorded["name"]
    assert result["model_path"] == str(gguf)
    gguf.unlink()
    assert trace_result(trace)["model"] == listed


def test_models_info_json() -> None:
    done = jackdaw("models", "info", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["architecture"] == "qwen2" and info["quantization"] == "Q4_K_M"  # the default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nowhere/model.gguf", "ask", "hi"], "Model file not found"),
        (["models", "info", "/nowhere/x.gguf"], "Model file not found"),
        (["traces", "show", "doesnotexist"], "no run has the id"),
    ],
)
def test_user_errors_are_messages_not_tracebacks(args: list[str], message: str) -> None:
    done = jackdaw(*args)
    assert done.returncode == 2
    assert message in done.stderr and "->" in done.stderr  # a hint says what to do
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_not_a_gguf_from_the_cli(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_text("hello")
    done = jackdaw("--model", str(bogus), "ask", "hi", "--json")
    assert done.returncode == 2 and "not a GGUF" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.real_model
def test_interactive_chat_keeps_history(jackdaw_home: Path) -> None:
    done = jackdaw("chat", stdin="What is the capital of France?\nAnd of Italy?\n/quit\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("jackdaw> ") == 2
    assert "larger GGUF" in done.stderr  # first-run hint on the embedded model
    listing = json.loads(jackdaw("traces", "list", "--json").stdout)["traces"]
    assert len(listing) == 2
    second = json.loads(jackdaw("traces", "show", listing[0]["id"], "--json").stdout)
    roles = [m["role"] for m in second["steps"][0]["messages"]]
    assert roles[:4] == ["system", "user", "assistant", "user"]  # turn 1 is in turn 2's prompt


@pytest.mark.real_model
def test_ctrl_c_stops_the_answer_not_the_chat(jackdaw_home: Path) -> None:
    import signal
    import threading
    import time

    # A long answer, so the Ctrl-C lands while it streams and not at the next prompt.
    (jackdaw_home / "config.toml").write_text("[model]\nmax_answer_tokens = 2000\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_core.cli", "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
        # A shell that starts a job in the background (`.ci/run &`) ignores SIGINT for it,
        # and Python then never turns Ctrl-C into KeyboardInterrupt: give the chat the
        # default disposition a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out: list[str] = []
    answering = threading.Event()

    def read() -> None:
        while ch := proc.stdout.read(1):
            out.append(ch)
            if (
                "".join(out[-40:]).count("jackdaw> ")
                and len("".join(out).split("jackdaw> ")[-1]) > 3
            ):
                answering.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc.stdin.write("Write a very long story about a jackdaw who collects keys.\n")
    proc.stdin.flush()
    assert answering.wait(120), "no answer started streaming"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.stdin.write("What is the capital of France?\n/quit\n")
    proc.stdin.flush()
    assert proc.wait(180) == 0
    reader.join(5)
    stderr = proc.stderr.read()
    assert "[stopped]" in stderr
    assert "".join(out).count("jackdaw> ") == 2  # the chat went on after the stop
    listing = json.loads(jackdaw("traces", "list", "--json").stdout)["traces"]
    assert sorted(t["status"] for t in listing)[0] == "cancelled"


def test_secrets_without_a_keychain_is_a_clear_error() -> None:
    # The real keyring library with no usable backend (as on a headless Linux box).
    done = jackdaw("secrets", "set", "my-server", stdin="sk-123\n")
    assert done.returncode == 2
    assert "No secure secret store" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.real_model
@pytest.mark.slow
def test_ask_answers_with_sources_from_a_watched_folder(jackdaw_home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text(
        "# Garden\n\nThe tomatoes in the greenhouse are watered every Tuesday by Alice.\n"
    )
    (notes / "car.md").write_text("# Car\n\nThe oil was changed in March at the Dupont garage.\n")
    (jackdaw_home / "config.toml").write_text("[agent]\nmax_steps = 2\n")
    assert jackdaw("folders", "add", str(notes)).returncode == 0
    indexed = json.loads(jackdaw("index", "--json").stdout)
    assert indexed["seen"] == 2 and indexed["failed"] == 0
    done = jackdaw("ask", "Who waters the tomatoes in the greenhouse?", "--json")
    assert done.returncode == 0, done.stderr
    sources = json.loads(done.stdout)["sources"]
    assert sources and sources[0]["source"] == f"{notes.resolve() / 'garden.md'} (Garden)"
    assert "Alice" in sources[0]["text"]


def test_ask_prints_something_taught_close_to_the_question_after_the_sources(capsys) -> None:
    trace = Trace(question="What blood type group am I?", model={}, settings={})
    trace.extra = {
        "sources": [{"source": "health.md", "text": "..."}],
        "related_fact": {
            "question": "What is my blood type?",
            "answer": "A negative.",
            "kind": "correction",
            "created_at": 1_764_000_000.0,
            "date": "2025-11-24",
        },
    }
    print_sources(trace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "  [1] health.md"
    assert lines[1].startswith(
        '  You taught me: "What is my blood type?" -> A negative. (your correction on 20'
    )
    assert trace_result(trace)["related_fact"]["answer"] == "A negative."
    trace.extra.pop("related_fact")
    print_sources(trace)
    assert capsys.readouterr().out == "  [1] health.md\n"
