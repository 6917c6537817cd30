"""The terminal prompt: what it shows, how it reads answers, and that its timeout works —
in-process with streams, and through stdin in a real subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tools.confirm import AnswerKind, ConfirmationRequest
from tools.rules import Scope
from tools.terminal import TerminalConfirmationHandler, format_request, printable

ROOT = Path(__file__).resolve().parents[2]


NOTES_SCOPE = Scope("write_note", "/home/ann/Notes")


def request(scope: Scope | None = NOTES_SCOPE, **kw) -> ConfirmationRequest:
    fields = dict(
        tool="write_note",
        description="Create or append a note.\nMore detail.",
        risk="write",
        arguments={"note": "ideas", "text": "line one\nline two"},
        reason="write tools ask before they run",
        preview="--- /dev/null\n+++ ideas.md\n+line one\n+line two",
        paths=("/home/ann/Notes/ideas.md",),
        scope=scope,
        timeout_s=5,
    )
    fields.update(kw)
    return ConfirmationRequest(**fields)  # type: ignore[arg-type]


def ask(answers: str, req: ConfirmationRequest | None = None):
    out = io.StringIO()
    answer = TerminalConfirmationHandler(io.StringIO(answers), out).confirm(req or request())
    return answer, out.getvalue()


def test_prompt_shows_tool_risk_arguments_and_preview() -> None:
    shown = format_request(request())
    for expected in (
        "write_note  (risk: write)",
        "Create or append a note.",
        "why:       write tools ask before they run",
        'note: "ideas"',
        "      line one\n      line two",
        "touches:   /home/ann/Notes/ideas.md",
        "would change:\n    --- /dev/null",
        "[a] always allow: write_note in /home/ann/Notes",
        "no answer within 5 s counts as deny",
    ):
        assert expected in shown, expected
    assert "More detail." not in shown  # the first line of the description only


def test_prompt_neutralises_escape_sequences() -> None:
    sneaky = "print('hi')\x1b[2K\x1b[1A\rrm -rf ~\u202e"
    for code in (sneaky, "import os\n" + sneaky):  # a short value and a shown-whole block
        shown = format_request(request(arguments={"code": code}, preview=sneaky))
        assert "\x1b" not in shown and "\u202e" not in shown and "\r" not in shown
        assert "[2K" in shown and "202e" in shown
    assert printable("tab\tand\nnewline") == "tab\tand\nnewline"


def test_long_code_is_shown_whole() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(500))
    shown = format_request(request(arguments={"code": code}, preview=None))
    assert "x499 = 499" in shown


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("y\n", AnswerKind.ALLOW_ONCE),
        ("YES\n", AnswerKind.ALLOW_ONCE),
        ("s\n", AnswerKind.ALLOW_SESSION),
        ("a\n", AnswerKind.ALLOW_ALWAYS),
        ("n\n", AnswerKind.DENY),
        ("\n", AnswerKind.DENY),  # Enter alone: the default is deny
        ("maybe\nwhat\ny\n", AnswerKind.ALLOW_ONCE),  # asks again until it understands
        ("", AnswerKind.DENY),  # end of input
    ],
)
def test_answers(typed: str, kind: AnswerKind) -> None:
    answer, shown = ask(typed)
    assert answer.kind is kind
    if kind in (AnswerKind.ALLOW_ALWAYS, AnswerKind.ALLOW_SESSION):
        assert answer.scope == Scope("write_note", "/home/ann/Notes")
    if "maybe" in typed:
        assert shown.count("please answer one of y/s/a/n") == 2


def test_always_is_not_accepted_where_not_offered() -> None:
    answer, shown = ask("a\ny\n", request(scope=None, tool="run_python"))
    assert answer.kind is AnswerKind.ALLOW_ONCE and "[a]" not in shown
    assert "please answer one of y/n" in shown


@pytest.mark.skipif(os.name != "posix", reason="select() on a pipe")
def test_timeout_on_a_silent_pipe() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as stream:
            handler = TerminalConfirmationHandler(stream, io.StringIO(), timeout_s=0.3)
            started = time.monotonic()
            answer = handler.confirm(request())
            assert time.monotonic() - started < 2
            assert answer.kind is AnswerKind.DENY and "no answer within 0.3 s" in answer.note
            # A late answer is not lost for the next prompt, and lines are read one by one.
            os.write(write_fd, b"y\nn\n")
            assert handler.confirm(request()).kind is AnswerKind.ALLOW_ONCE
            assert handler.confirm(request()).kind is AnswerKind.DENY
    finally:
        os.close(write_fd)


DRIVER = textwrap.dedent(
    """
    import json, sys
    from tools.confirm import ConfirmationRequest
    from tools.rules import Scope
    from tools.terminal import TerminalConfirmationHandler

    timeout = float(sys.argv[1])
    req = ConfirmationRequest("write_note", "Write a note.", "write", {"note": "a", "text": "b"},
                              "write tools ask", preview="+b", scope=Scope("write_note", "/n"),
                              timeout_s=timeout)
    handler = TerminalConfirmationHandler(sys.stdin, sys.stderr)
    print(json.dumps([handler.confirm(req).to_dict() for _ in range(int(sys.argv[2]))]))
    """
)


def drive(stdin: str | None, timeout: float = 5.0, prompts: int = 1) -> tuple[list[dict], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(timeout), str(prompts)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if stdin is not None:
            out, err = proc.communicate(stdin, timeout=20)
        else:
            # stdin stays open and silent: the prompt must time out by itself.
            out, err = proc.stdout.read(), proc.stderr.read()
            proc.wait(timeout=20)
    finally:
        proc.kill()
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    return json.loads(out), err


def test_prompt_driven_through_stdin_in_a_subprocess() -> None:
    answers, err = drive("a\ny\n", prompts=2)
    assert [a["kind"] for a in answers] == ["allow_always", "allow_once"]
    assert answers[0]["scope"]["path_prefix"] == "/n"
    assert "== Jackdaw asks permission ==" in err and "+b" in err


def test_subprocess_prompt_times_out_with_stdin_open_and_exits_cleanly() -> None:
    started = time.monotonic()
    answers, err = drive(None, timeout=0.5)
    assert time.monotonic() - started < 10
    assert answers[0]["kind"] == "deny" and "no answer within 0.5 s" in err


def test_subprocess_prompt_denies_at_end_of_input() -> None:
    answers, _ = drive("")
    assert answers[0]["kind"] == "deny" and answers[0]["note"] == "no answer (end of input)"
