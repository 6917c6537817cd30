"""``jackdaw tools / permissions / audit`` as a user runs them: real subprocesses, the
confirmation answered through stdin."""

from __future__ import annotations

import json
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
