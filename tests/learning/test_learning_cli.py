"""The learning commands end to end, in process: ``jackdaw rate | correct | corrections |
experiences | lessons | replay | refine | prompts | export | forget`` and ``ask --json``
reporting ``replayed_from``. The composition root is the real one, with the learning loop
wired as the lead's snippet does, and a scripted model and word embedder swapped in."""

from __future__ import annotations

import json
from functools import cached_property

import pytest

from agent_core import cli
from agent_core.agent import Agent
from agent_core.learning import Learning
from agent_core.services import Services
from tests.fakes import ScriptedBackend, call, final
from tests.learning.fakes import WordsEmbedder

SCRIPT: list[str] = []


class WiredServices(Services):
    @cached_property
    def embedder(self) -> WordsEmbedder:
        return WordsEmbedder()

    @cached_property
    def chat_backend(self) -> ScriptedBackend:  # type: ignore[override]
        return ScriptedBackend(SCRIPT)

    # -- as in the wiring snippet for agent_core/services.py ---------------------------------
    @cached_property
    def learning(self) -> Learning:
        return Learning.from_services(self)

    @cached_property
    def agent(self) -> Agent:
        agent = Services.agent.func(self)  # type: ignore[attr-defined]
        agent.learning = self.learning.memory
        agent.system_prompt = self.learning.active_prompt
        return agent


@pytest.fixture(autouse=True)
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "Services", WiredServices)
    SCRIPT.clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jackdaw(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def ask(capsys, question: str, *outputs: str) -> dict:
    SCRIPT[:] = list(outputs)
    return json.loads(jackdaw(capsys, "ask", question, "--json"))


def test_rate_correct_and_the_correction_in_force(capsys) -> None:
    first = ask(capsys, "Who maintains billing?", final("Bob"))
    out = jackdaw(capsys, "rate", first["trace_id"], "down", "--comment", "wrong")
    assert "down" in out
    out = jackdaw(capsys, "correct", first["trace_id"][:7], "Dana", "--json")
    correction = json.loads(out)["correction"]
    assert correction["answer"] == "Dana" and correction["original_answer"] == "Bob"
    again = ask(capsys, "who maintains billing")  # no model output needed
    assert again["answer"].startswith("Dana (your correction of ")
    out = jackdaw(capsys, "corrections", "list", "--json")
    assert [c["answer"] for c in json.loads(out)["corrections"]] == ["Dana"]
    out = jackdaw(capsys, "corrections", "list")
    assert "Who maintains billing?" in out and "Dana" in out


def test_experiences_replay_and_ask_reports_replayed_from(capsys) -> None:
    first = ask(capsys, "What is 6 times 7?", call("calculator", expression="6*7"), final("42"))
    assert first["replayed_from"] is None
    out = jackdaw(capsys, "experiences", "list", "--json")
    (experience,) = json.loads(out)["experiences"]
    again = ask(capsys, "What is 6 times 7?", final("42"))
    assert again["replayed_from"] == experience["id"]
    assert again["tool_calls"] == [
        {"tool": "calculator", "arguments": {"expression": "6*7"}, "status": "ok"}
    ]
    out = jackdaw(capsys, "experiences", "show", experience["id"])
    assert "workflow:" in out and "step 1: calculator" in out and "status_ok" in out
    out = jackdaw(capsys, "replay", first["trace_id"], "--json")
    report = json.loads(out)
    assert report["matches"] and report["first_divergence"] is None
    out = jackdaw(capsys, "replay", first["trace_id"], "--from-record")
    assert "every step matches" in out


def test_prompts_refine_lessons_export_and_forget(capsys, tmp_path) -> None:
    first = ask(capsys, "Boat name?", final("Titanic"))
    jackdaw(capsys, "correct", first["trace_id"], "Albatross")
    lesson_text = "When asked for the boat name, answer Albatross exactly."
    # distillation; the version in force; the candidate; the candidate without its lesson
    SCRIPT[:] = [final("Titanic"), final("Albatross"), final("Albatross")]
    SCRIPT.insert(0, json.dumps({"ops": [{"op": "add", "text": lesson_text}]}))
    out = jackdaw(capsys, "refine", "--json")
    result = json.loads(out)
    assert result["status"] == "adopted" and result["cases"] == 1
    assert (result["current_score"], result["candidate_score"]) == (0.0, 1.0)
    out = jackdaw(capsys, "lessons", "list", "--json")
    (lesson,) = json.loads(out)["lessons"]
    # The exemplar did it alone: the lesson was tried, but did not help.
    assert lesson["text"] == lesson_text and lesson["helpful"] == 0
    assert result["report"]["lessons_helped"] is False
    out = jackdaw(capsys, "prompts", "list", "--json")
    listing = json.loads(out)
    assert listing["active"] == result["candidate_id"] and len(listing["versions"]) == 2
    out = jackdaw(capsys, "prompts", "show", result["candidate_id"])
    assert "Q: Boat name?" in out and lesson_text in out
    default = next(v["id"] for v in listing["versions"] if v["status"] == "default")
    out = jackdaw(capsys, "prompts", "rollback", default)
    assert default in out
    out = jackdaw(capsys, "prompts", "list")
    assert f"* {default}" in out

    path = tmp_path / "sft.jsonl"
    out = jackdaw(capsys, "export", str(path), "--format", "sft", "--json")
    assert json.loads(out)["rows"] == 1 and path.exists()

    out = jackdaw(capsys, "forget", "trace", first["trace_id"], "--json")
    report = json.loads(out)
    assert report["deleted"]["traces"] == [first["trace_id"]]
    assert report["deleted"]["corrections"] and report["deleted"]["lessons"]


def test_user_errors_say_what_to_do(capsys) -> None:
    for argv in (
        ["rate", "nope", "up"],
        ["experiences", "show", "nope"],
        ["forget", "lesson", "42"],
        ["prompts", "rollback", "nope"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "" and "->" in err and "Traceback" not in err
