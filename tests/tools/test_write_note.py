"""write_note: asks, shows a diff, creates or appends inside the notes folder only."""

from __future__ import annotations

import pytest

from tools.confirm import Answer, ScriptedConfirmationHandler
from tools.rules import Scope


def test_write_note_asks_and_shows_what_would_change(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["once"])
    executor = workspace.executor(memory, confirmer)
    outcome = executor.call("write_note", {"note": "ideas", "text": "- buy milk"})
    assert outcome.ok and outcome.rule == "user:allow_once" and outcome.answer == "allow_once"
    assert (workspace.notes / "ideas.md").read_text() == "- buy milk\n"
    request = confirmer.requests[0]
    assert request.risk == "write" and request.paths == (str(workspace.notes / "ideas.md"),)
    assert "+- buy milk" in request.preview and "/dev/null" in request.preview
    assert request.scope == Scope(tool="write_note", path_prefix=str(workspace.notes))


def test_append_shows_a_diff_against_the_existing_note(workspace, memory) -> None:
    (workspace.notes / "log.md").write_text("# Log\n\nfirst entry")
    confirmer = ScriptedConfirmationHandler(["once"])
    executor = workspace.executor(memory, confirmer)
    assert executor.call("write_note", {"note": "log.md", "text": "second entry"}).ok
    assert (workspace.notes / "log.md").read_text() == "# Log\n\nfirst entry\n\nsecond entry\n"
    preview = confirmer.requests[0].preview
    assert "+second entry" in preview and " first entry" in preview


def test_denied_write_changes_nothing(workspace, memory) -> None:
    executor = workspace.executor(memory, ScriptedConfirmationHandler(["deny"]))
    outcome = executor.call("write_note", {"note": "ideas", "text": "x"})
    assert outcome.status == "denied" and outcome.observation.startswith("denied by the user")
    assert not (workspace.notes / "ideas.md").exists()


def test_create_mode_does_not_overwrite(workspace, memory) -> None:
    (workspace.notes / "keep.md").write_text("precious")
    executor = workspace.executor(memory, ScriptedConfirmationHandler(["once"]))
    outcome = executor.call("write_note", {"note": "keep", "text": "new", "mode": "create"})
    assert outcome.status == "error" and "already exists" in outcome.observation
    assert (workspace.notes / "keep.md").read_text() == "precious"


def test_subfolders_are_created_inside_the_notes_folder(workspace, memory) -> None:
    executor = workspace.executor(memory, ScriptedConfirmationHandler(["once"]))
    assert executor.call("write_note", {"note": "work/2024/todo.md", "text": "x"}).ok
    assert (workspace.notes / "work" / "2024" / "todo.md").exists()


@pytest.mark.parametrize(
    "note",
    ["../escape", "../../etc/cron.d/x", "/tmp/elsewhere", "work/../../escape", "link/x"],
)
def test_write_note_cannot_leave_the_notes_folder(workspace, memory, note) -> None:
    (workspace.notes / "link").symlink_to(workspace.outside)
    confirmer = ScriptedConfirmationHandler(["once"])
    executor = workspace.executor(memory, confirmer)
    outcome = executor.call("write_note", {"note": note, "text": "pwned"})
    assert outcome.status == "denied" and outcome.rule == "default:unsafe-path"
    assert confirmer.requests == []  # refused before anyone is asked
    assert not list(workspace.outside.glob("*.md"))


def test_no_rule_can_widen_write_note_beyond_the_notes_folder(workspace, memory) -> None:
    from tools.rules import Lifetime

    executor = workspace.executor(memory, ScriptedConfirmationHandler())
    executor.policy.allow(Scope.make("write_note", workspace.outside), Lifetime.ALWAYS)
    executor.policy.allow(Scope.make("write_note"), Lifetime.ALWAYS)
    outcome = executor.call("write_note", {"note": str(workspace.outside / "x.md"), "text": "x"})
    assert outcome.status == "denied"
    assert not (workspace.outside / "x.md").exists()


def test_a_symlinked_note_pointing_out_is_refused(workspace, memory) -> None:
    (workspace.notes / "trap.md").symlink_to(workspace.outside / "secret.txt")
    executor = workspace.executor(memory, ScriptedConfirmationHandler(["once"]))
    outcome = executor.call("write_note", {"note": "trap.md", "text": "x"})
    assert outcome.status == "denied"
    assert (workspace.outside / "secret.txt").read_text() == "TOP SECRET\n"


def test_always_answer_lets_the_next_write_in_that_folder_through(workspace, memory) -> None:
    confirmer = ScriptedConfirmationHandler(["always"])
    executor = workspace.executor(memory, confirmer)
    first = executor.call("write_note", {"note": "a", "text": "1"})
    second = executor.call("write_note", {"note": "b", "text": "2"})
    assert first.answer == "allow_always" and second.answer is None
    assert second.rule == first.rule and first.rule.startswith("rule:")
    assert len(confirmer.requests) == 1


def test_handler_may_narrow_the_offered_scope(workspace, memory) -> None:
    work = Scope.make("write_note", workspace.notes / "work")
    confirmer = ScriptedConfirmationHandler([Answer.allow_always(work)])
    executor = workspace.executor(memory, confirmer)
    outcome = executor.call("write_note", {"note": "top", "text": "1"})
    assert outcome.ok and outcome.rule == "user:allow_once"  # this call approved as itself
    # The narrower rule stands for work/ only.
    assert executor.call("write_note", {"note": "work/a", "text": "2"}).ok
    assert executor.call("write_note", {"note": "top2", "text": "3"}).status == "denied"
