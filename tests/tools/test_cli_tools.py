"""``jackdaw tools / permissions / audit`` as a user runs them: real subprocesses, the
confirmation answered through stdin."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(jackdaw_home: Path, tmp_path: Path) -> Path:
    watched = tmp_path / "Documents"
    watched.mkdir()
    (watched / "hello.txt").write_text("Hello from the CLI test.\n")
    (jackdaw_home / "config.toml").write_text(
        f'[knowledge]\nwatched_folders = ["{watched}"]\n'
        f'[tools]\nnotes_folder = "{tmp_path / "Notes"}"\nconfirm_timeout_s = 0.7\n'
    )
    return tmp_path


def jackdaw(*args: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_core.cli", *args],
        cwd=ROOT,
        input=stdin,
        stdin=None if stdin is not None else subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cli(capsys, monkeypatch):
    """The same commands in-process (faster); stdin is a string, stdout/stderr captured."""
    import io

    from agent_core.cli import main

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def one_json(result: subprocess.CompletedProcess[str]) -> dict:
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(data, dict)
    return data


def test_tools_list(home: Path, cli) -> None:
    data = one_json(cli("tools", "list", "--json"))
    tools = {t["name"]: t for t in data["tools"]}
    assert {"read_file", "list_folder", "write_note", "calculator", "current_datetime",
            "run_python"} <= set(tools)  # fmt: skip
    assert tools["write_note"]["risk"] == "write" and tools["run_python"]["always_ask"]
    assert tools["calculator"]["parameters"]["required"] == ["expression"]
    text = cli("tools", "list")
    assert text.returncode == 0 and "run_python" in text.stdout and "execute" in text.stdout
    assert "SANDBOX" in text.stdout.upper()  # what the code can touch on this machine


def test_read_tool_runs_without_asking(home: Path, cli) -> None:
    result = cli("tools", "call", "read_file", '{"path": "hello.txt"}')
    assert result.returncode == 0 and "Hello from the CLI test." in result.stdout
    assert "asks permission" not in result.stderr
    denied = cli("tools", "call", "read_file", '{"path": "../../../etc/passwd"}', "--json")
    assert denied.returncode == 1 and one_json(denied)["outcome"]["status"] == "denied"


def test_write_asks_through_stdin(home: Path) -> None:
    args = ("tools", "call", "write_note", '{"note": "cli", "text": "from the terminal"}', "--json")
    no = jackdaw(*args, stdin="n\n")
    assert no.returncode == 1 and one_json(no)["outcome"]["observation"].startswith(
        "denied by the user"
    )
    assert "== Jackdaw asks permission ==" in no.stderr and "+from the terminal" in no.stderr
    assert not (home / "Notes" / "cli.md").exists()

    yes = jackdaw(*args, stdin="y\n")
    outcome = one_json(yes)["outcome"]
    assert yes.returncode == 0 and outcome["answer"] == "allow_once"
    assert (home / "Notes" / "cli.md").read_text() == "from the terminal\n"


def test_always_rule_list_and_revoke(home: Path) -> None:
    args = ("tools", "call", "write_note", '{"note": "a", "text": "x"}', "--json")
    assert one_json(jackdaw(*args, stdin="a\n"))["outcome"]["answer"] == "allow_always"
    # The next call, in a new process, does not ask: stdin is at its end and it still runs.
    second = one_json(jackdaw(*args, stdin=""))["outcome"]
    assert second["status"] == "ok" and second["answer"] is None
    rules = one_json(jackdaw("permissions", "list", "--json"))["rules"]
    assert len(rules) == 1 and rules[0]["scope"]["path_prefix"] == str(home / "Notes")
    assert "write_note in" in jackdaw("permissions", "list").stdout

    assert jackdaw("permissions", "revoke", rules[0]["id"]).returncode == 0
    third = jackdaw(*args, stdin="")
    assert third.returncode == 1 and one_json(third)["outcome"]["status"] == "denied"
    again = jackdaw("permissions", "revoke", rules[0]["id"])
    assert again.returncode == 2 and "jackdaw permissions list" in again.stderr


def test_no_answer_in_time_is_a_denial(home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_core.cli", "tools", "call", "write_note",
         '{"note": "t", "text": "x"}', "--json"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = time.monotonic()
    try:
        out = proc.stdout.read()  # stdin left open and silent
        err = proc.stderr.read()
        rc = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdin.close()
    assert time.monotonic() - started < 15
    assert rc == 1 and "no answer within 0.7 s" in json.loads(out)["outcome"]["observation"]
    assert "no answer within 0.7 s: denied" in err


def test_permissions_allow(home: Path, cli) -> None:
    added = one_json(
        cli("permissions", "allow", "read_file", "--path", str(home), "--arg", "path=*.txt",
                "--json")
    )  # fmt: skip
    assert added["rule"]["scope"]["arg_patterns"] == {"path": "*.txt"}
    (home / "elsewhere.txt").write_text("outside the watched folder")
    result = cli("tools", "call", "read_file", json.dumps({"path": str(home / "elsewhere.txt")}))
    assert result.returncode == 0 and "outside the watched folder" in result.stdout
    refused = cli("permissions", "allow", "run_python")
    assert refused.returncode == 2 and "asks before every call" in refused.stderr
    unknown = cli("permissions", "allow", "nope")
    assert unknown.returncode == 2 and "jackdaw tools list" in unknown.stderr
    bad_arg = cli("permissions", "allow", "read_file", "--arg", "colour=red")
    assert bad_arg.returncode == 2 and "no argument" in bad_arg.stderr


def test_audit(home: Path, cli) -> None:
    cli("tools", "call", "calculator", '{"expression": "6*7"}')
    cli("tools", "call", "write_note", '{"note": "n", "text": "x", "password": "hunter2"}')
    cli("tools", "call", "write_note", '{"note": "n", "text": "x"}', stdin="n\n")
    entries = one_json(cli("audit", "--json", "--limit", "2"))["entries"]
    assert [(e["tool"], e["status"]) for e in entries] == [
        ("write_note", "denied"),
        ("write_note", "invalid_arguments"),
    ]
    assert entries[0]["answer"] == "deny" and entries[0]["rule"] == "user:deny"
    assert "hunter2" not in json.dumps(entries)
    text = cli("audit").stdout.splitlines()
    assert len(text) == 3 and "calculator" in text[0] and "default:read" in text[0]
    assert (
        one_json(cli("audit", "--json", "--tool", "calculator"))["entries"][0]["observation"]
        == "6*7 = 42"
    )


def test_user_errors_have_hints(home: Path, cli) -> None:
    bad = cli("tools", "call", "calculator", "{bad json")
    assert bad.returncode == 2 and "error: The arguments are not valid JSON" in bad.stderr
    assert "jackdaw tools call calculator" in bad.stderr
    unknown = cli("tools", "call", "nope", "{}", "--json")
    assert unknown.returncode == 1 and one_json(unknown)["outcome"]["status"] == "unknown_tool"


# -- what a terminal is sent ---------------------------------------------------------------------
OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # would set the clipboard to "pwned"
HOSTILE = f"before {OSC52} \x1b[2J\x9b31m\u202eevil\r middle\x1b[8m after"


def test_tools_call_escapes_a_files_control_characters(home: Path, cli) -> None:
    (home / "Documents" / "hostile.txt").write_text(HOSTILE + "\nsecond line\n")
    result = cli("tools", "call", "read_file", '{"path": "hostile.txt"}')
    assert result.returncode == 0
    assert not any(ch in result.stdout for ch in "\x1b\x07\x9b\u202e\r")
    assert "\\x1b]52;c;cHduZWQ=\\x07" in result.stdout  # shown, not obeyed
    assert "before" in result.stdout and "after\nsecond line" in result.stdout


def test_json_output_carries_no_raw_terminal_controls(home: Path, cli) -> None:
    (home / "Documents" / "hostile.txt").write_text(HOSTILE)
    result = cli("tools", "call", "read_file", '{"path": "hostile.txt"}', "--json")
    assert not any(ch in result.stdout for ch in "\x1b\x07\x9b\u202e\r")
    assert HOSTILE in one_json(result)["outcome"]["observation"]  # the same data, escaped


def test_audit_and_permissions_listings_are_escaped(home: Path, cli) -> None:
    cli("tools", "call", "calculator", json.dumps({"expression": f"1+1 {OSC52}"}))
    cli("permissions", "allow", "read_file", "--arg", f"path=*{OSC52}")
    listings = cli("audit").stdout + cli("permissions", "list").stdout
    assert "calculator" in listings and "read_file" in listings
    assert "\x1b" not in listings and "\x07" not in listings


def test_for_terminal_keeps_text_and_escapes_controls() -> None:
    from agent_core.cli_output import for_terminal

    assert for_terminal("plain\ttext\nnext line, ünïcode, 漢字") == (
        "plain\ttext\nnext line, ünïcode, 漢字"
    )
    assert for_terminal(OSC52) == "\\x1b]52;c;cHduZWQ=\\x07"
    assert for_terminal("\x9b\u202e\r") == "\\x9b\\u202e\\r"


# -- a full disk ----------------------------------------------------------------------------------
def _full_after(monkeypatch, module: str, extra_pages: int) -> None:
    """Every new connection of ``module`` may grow its database by ``extra_pages`` only: SQLite
    itself then answers SQLITE_FULL, as on a full disk."""
    import importlib

    mod = importlib.import_module(module)
    real_connect = mod.connect

    def connect(path):  # type: ignore[no-untyped-def]
        conn = real_connect(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")
        return conn

    monkeypatch.setattr(mod, "connect", connect)


def test_folders_add_on_a_full_disk_is_one_line_and_loses_nothing(
    home: Path, cli, jackdaw_home: Path
) -> None:
    assert cli("index").returncode == 0  # the watched folder, indexed while there was room
    before = one_json(cli("folders", "list", "--json"))["folders"]
    big = home / "Big"
    big.mkdir()
    for i in range(30):
        (big / f"note{i}.md").write_text(f"# Note {i}\n\n" + f"Words of note {i}. " * 400)
    with pytest.MonkeyPatch.context() as full:
        _full_after(full, "knowledge.db", 2)
        result = cli("folders", "add", str(big))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the disk is full") and "free some space" in last
    assert "Traceback" not in result.stderr and "sqlite" not in result.stderr.lower()
    after = one_json(cli("folders", "list", "--json"))["folders"]
    assert [f for f in after if f["path"] == before[0]["path"]] == before  # all still there
    for db in ("knowledge.db", "memory.db"):
        conn = sqlite3.connect(jackdaw_home / db)
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        conn.close()
    assert cli("folders", "add", str(big)).returncode == 0  # room again: it goes on


def test_index_on_a_full_disk_is_one_line(home: Path, cli) -> None:
    for i in range(30):
        (home / "Documents" / f"more{i}.md").write_text(f"Line {i}. " * 500)
    with pytest.MonkeyPatch.context() as full:
        _full_after(full, "knowledge.db", 2)
        result = cli("index")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the disk is full")
    assert cli("index").returncode == 0  # room again: it picks up where it was


def test_ask_on_a_full_disk_is_one_line(home: Path, cli, monkeypatch) -> None:
    from agent_core.services import Services
    from tests.fakes import ScriptedBackend, final

    backend = ScriptedBackend([final("An answer.")] * 4)
    monkeypatch.setattr(Services, "chat_backend", backend, raising=False)
    assert cli("ask", "first question").returncode == 0
    with pytest.MonkeyPatch.context() as full:
        _full_after(full, "agent_core.memory_db", 0)
        result = cli("ask", "second question " * 200)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the disk is full")
    listed = one_json(cli("traces", "list", "--json"))["traces"]
    assert [t["question"] for t in listed] == ["first question"]  # the first run is kept
