"""read_file and list_folder on real files, through the executor as the agent calls them."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tools.base import ToolError
from tools.builtins.files import WINDOW_CHARS, plain_text
from tools.paths import PathGuard, PathRefused, call_grants


@pytest.fixture
def executor(workspace, memory: sqlite3.Connection):
    return workspace.executor(memory, max_file_bytes=100_000)


def test_read_file_inside_a_watched_folder(executor, workspace) -> None:
    outcome = executor.call("read_file", {"path": str(workspace.watched / "hello.txt")})
    assert outcome.ok and outcome.rule == "default:read-inside-roots"
    assert "Hello from a watched folder." in outcome.observation
    # Content is marked as data: a document's text is never an instruction.
    assert "not instructions" in outcome.observation


def test_relative_path_is_taken_inside_a_watched_folder(executor) -> None:
    outcome = executor.call("read_file", {"path": "sub/deep.md"})
    assert outcome.ok and "A nested note." in outcome.observation


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "../private/secret.txt",
        "sub/../../private/secret.txt",
        "/etc/passwd",
        "{outside}/secret.txt",
        "~/.bashrc",
    ],
)
def test_traversal_is_denied_and_audited(executor, workspace, memory, path) -> None:
    outcome = executor.call("read_file", {"path": path.format(outside=workspace.outside)})
    assert outcome.status == "denied"
    assert "TOP SECRET" not in outcome.observation and "root:" not in outcome.observation
    row = memory.execute(
        "SELECT status, decision FROM tool_audit WHERE id = ?", (outcome.audit_id,)
    )
    assert tuple(row.fetchone()) == ("denied", "deny")


def test_symlink_out_of_the_folder_is_refused(executor, workspace) -> None:
    (workspace.watched / "innocent.txt").symlink_to(workspace.outside / "secret.txt")
    (workspace.watched / "dir-link").symlink_to(workspace.outside)
    for path in ("innocent.txt", "dir-link/secret.txt"):
        outcome = executor.call("read_file", {"path": path})
        assert outcome.status == "denied", path
        assert "TOP SECRET" not in outcome.observation


def test_symlink_within_the_folder_is_fine(executor, workspace) -> None:
    (workspace.watched / "alias.txt").symlink_to(workspace.watched / "hello.txt")
    assert executor.call("read_file", {"path": "alias.txt"}).ok


def test_huge_file_is_refused(executor, workspace) -> None:
    big = workspace.watched / "big.log"
    with open(big, "wb") as fh:
        fh.truncate(5_000_000)  # sparse: 5 MB on paper, nothing on disk
    outcome = executor.call("read_file", {"path": "big.log"})
    assert outcome.status == "error" and "MB" in outcome.observation


def test_binary_file_is_refused(executor, workspace) -> None:
    (workspace.watched / "image.png").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
    )
    (workspace.watched / "program").write_bytes(bytes(range(256)) * 4)
    for name in ("image.png", "program"):
        outcome = executor.call("read_file", {"path": name})
        assert outcome.status == "error" and "binary" in outcome.observation, name


def test_long_file_is_read_in_windows(executor, workspace) -> None:
    text = "".join(f"line {i:05d}\n" for i in range(1000))  # 11,000 characters
    (workspace.watched / "long.txt").write_text(text)
    first = executor.call("read_file", {"path": "long.txt"})
    assert f"start={WINDOW_CHARS}" in first.observation and "line 00000" in first.observation
    second = executor.call("read_file", {"path": "long.txt", "start": WINDOW_CHARS})
    assert second.ok and text[WINDOW_CHARS : WINDOW_CHARS + 20] in second.observation
    past = executor.call("read_file", {"path": "long.txt", "start": 10**6})
    assert past.status == "error"


def test_fifo_and_device_are_refused(executor, workspace) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(workspace.watched / "pipe")
    outcome = executor.call("read_file", {"path": "pipe"})
    assert outcome.status == "denied" and "pipe" in outcome.observation
    (workspace.watched / "null").symlink_to("/dev/null")
    outcome = executor.call("read_file", {"path": "null"})  # resolves to /dev, outside anyway
    assert outcome.status == "denied"


def test_device_refused_even_inside_a_root(tmp_path) -> None:
    guard = PathGuard(["/dev"])
    with pytest.raises(PathRefused, match="device"):
        guard.check("/dev/zero")


def test_credential_stores_are_refused_inside_a_root(workspace, memory) -> None:
    ssh = workspace.watched / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("PRIVATE KEY")
    executor = workspace.executor(memory)
    outcome = executor.call("read_file", {"path": ".ssh/id_ed25519"})
    assert outcome.status == "denied" and "PRIVATE" not in outcome.observation


def test_bad_arguments_go_back_to_the_model(executor) -> None:
    for args in ({}, {"path": ""}, {"path": 3}, {"path": "x", "start": -1}, {"path": "x", "z": 1}):
        outcome = executor.call("read_file", args)
        assert outcome.status == "invalid_arguments", args


def test_missing_file_and_folder(executor) -> None:
    assert "no such file" in executor.call("read_file", {"path": "nope.txt"}).observation
    assert "list_folder" in executor.call("read_file", {"path": "sub"}).observation


def test_user_rule_opens_a_folder_for_one_call_through_grants(workspace, memory) -> None:
    from tools.rules import Lifetime, Scope

    executor = workspace.executor(memory)
    assert executor.call("read_file", {"path": str(workspace.outside / "secret.txt")}).status == (
        "denied"
    )
    executor.policy.allow(Scope.make("read_file", workspace.outside), Lifetime.ONCE)
    outcome = executor.call("read_file", {"path": str(workspace.outside / "secret.txt")})
    assert outcome.ok and "TOP SECRET" in outcome.observation
    assert call_grants.get() == ()  # the grant ended with the call
    assert executor.call("read_file", {"path": str(workspace.outside / "secret.txt")}).status == (
        "denied"
    )


def test_read_file_uses_an_injected_extractor(workspace, memory) -> None:
    seen = []

    def extract(data: bytes, path):
        seen.append(path.name)
        return "EXTRACTED " + data.decode()[:5] if path.suffix == ".fancy" else None

    (workspace.watched / "doc.fancy").write_text("fancy content")
    executor = workspace.executor(memory, extract_text=extract)
    assert "EXTRACTED fancy" in executor.call("read_file", {"path": "doc.fancy"}).observation
    assert "Hello" in executor.call("read_file", {"path": "hello.txt"}).observation
    assert seen == ["doc.fancy", "hello.txt"]


def test_plain_text_decoding() -> None:
    from pathlib import Path

    assert plain_text("café".encode("cp1252"), Path("x")) == "caf\ufffd"
    assert plain_text("\ufeffhi".encode(), Path("x")) == "hi"
    assert plain_text("hi".encode("utf-16"), Path("x")) == "hi"
    with pytest.raises(ToolError):
        plain_text(b"\x00\x01\x02", Path("x"))


# -- list_folder ------------------------------------------------------------------------------
def test_list_folder(executor, workspace) -> None:
    listing = executor.call("list_folder", {"path": str(workspace.watched)})
    assert listing.ok
    lines = listing.observation.splitlines()
    assert lines[1] == "sub/" and lines[2].startswith("hello.txt")


def test_list_folder_without_a_path_shows_the_roots(executor, workspace) -> None:
    listing = executor.call("list_folder", {})
    assert str(workspace.watched) in listing.observation
    assert str(workspace.outside) not in listing.observation


def test_list_folder_refuses_outside_and_files(executor, workspace) -> None:
    assert executor.call("list_folder", {"path": str(workspace.outside)}).status == "denied"
    assert executor.call("list_folder", {"path": "/"}).status == "denied"
    assert executor.call("list_folder", {"path": "hello.txt"}).status == "error"


def test_list_folder_caps_entries(executor, workspace) -> None:
    many = workspace.watched / "many"
    many.mkdir()
    for i in range(250):
        (many / f"f{i:03d}").touch()
    outcome = executor.call("list_folder", {"path": "many"})
    assert "and 50 more entries" in outcome.observation


def test_symlink_loop_and_odd_paths_are_refused_not_crashes(executor, workspace) -> None:
    (workspace.watched / "loop").symlink_to(workspace.watched / "loop")
    for path in ("loop", "loop/x", "a\x00b", "x" * 5000):
        outcome = executor.call("read_file", {"path": path})
        assert outcome.status in ("denied", "error"), (path, outcome)


def test_a_path_copied_with_its_citation_reads_the_file(executor, workspace) -> None:
    # The notes are shown to the model as "path (Heading)" or "path (page 2)"; the 0.5B
    # model passed that label on as the path (and answered with the "no such file" error).
    hello = workspace.watched / "hello.txt"
    for label in (f"{hello} (Greeting (first))", "hello.txt (page 2)"):
        outcome = executor.call("read_file", {"path": label})
        assert outcome.ok and "Hello from a watched folder." in outcome.observation
    named = workspace.watched / "plan (draft).txt"  # a name with brackets is itself
    named.write_text("The draft plan.", encoding="utf-8")
    outcome = executor.call("read_file", {"path": str(named)})
    assert outcome.ok and "The draft plan." in outcome.observation
    outcome = executor.call("read_file", {"path": f"{workspace.watched}/nothing.txt (Heading)"})
    assert outcome.status != "ok" and "no such file" in outcome.observation
    outside = executor.call("read_file", {"path": f"{workspace.outside}/secret.txt (Heading)"})
    assert outside.status == "denied" and "TOP SECRET" not in outside.observation
