"""Export (SFT / preference JSONL, no secrets) and forgetting (with what derives from it)."""

from __future__ import annotations

import json

import pytest

from agent_core.learning.export import ExportError
from agent_core.learning.lessons import LessonDelta
from agent_core.learning.versions import ADOPTED, DEFAULT
from agent_core.traces import TraceNotFoundError
from tests.fakes import call, final
from tests.learning.fakes import ExemplarBackend

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sft_export_holds_good_runs_and_corrections_without_secrets(world, tmp_path) -> None:
    good, _ = world.ask("Capital of France?", [final("Paris")])
    world.learning.rate(good.id, up=True)
    wrong, _ = world.ask("My API token?", [final(f"It is {SECRET}")])
    world.learning.correct(wrong.id, f"Use {SECRET} in the header")
    meh, _ = world.ask("Weather?", [final("Rain")])
    world.learning.rate(meh.id, up=False)
    done = world.learning.export(tmp_path / "out" / "sft.jsonl", "sft")
    assert done["rows"] == 2
    out = rows(tmp_path / "out" / "sft.jsonl")
    kinds = sorted(r["meta"]["kind"] for r in out)
    assert kinds == ["correction", "uprated"]
    for row in out:
        assert row["messages"][0]["role"] == "system"
        assert row["messages"][-1]["role"] == "assistant"
        # the model's own format: the answer as free text, never a JSON envelope
        assert row["messages"][-1]["content"] and not row["messages"][-1]["content"].startswith("{")
    assert SECRET not in (tmp_path / "out" / "sft.jsonl").read_text()
    assert "[redacted]" in (tmp_path / "out" / "sft.jsonl").read_text()


def test_preference_export_pairs_corrected_and_rejected_answers(world, tmp_path) -> None:
    wrong, _ = world.ask("Who maintains billing?", [final("Bob")])
    world.learning.correct(wrong.id, "Dana")
    again, _ = world.ask("Boat name?", [final("Titanic")])
    world.learning.rate(again.id, up=False)  # no right answer known: not exported
    done = world.learning.export(tmp_path / "pref.jsonl", "preference")
    (row,) = rows(tmp_path / "pref.jsonl")
    assert done["rows"] == 1
    assert row["chosen"][0]["content"] == "Dana"
    assert row["rejected"][0]["content"] == "Bob"
    assert row["prompt"][-1]["content"].endswith("Who maintains billing?")


def test_a_down_rated_answer_pairs_with_an_up_rated_one(world, tmp_path) -> None:
    bad, _ = world.ask("Boat name?", [final("Titanic")])
    good, _ = world.ask("boat name", [final("Albatross")])
    world.learning.rate(bad.id, up=False)
    world.learning.rate(good.id, up=True)
    (row,) = [r for r in _export(world, tmp_path) if r["meta"]["kind"] == "downrated"]
    assert row["chosen"][0]["content"] == "Albatross"


def _export(world, tmp_path) -> list[dict]:
    world.learning.export(tmp_path / "p.jsonl", "preference")
    return rows(tmp_path / "p.jsonl")


def test_an_unknown_format_is_a_user_error(world, tmp_path) -> None:
    with pytest.raises(ExportError):
        world.learning.export(tmp_path / "x.jsonl", "csv")


def test_forgetting_a_trace_takes_what_derives_only_from_it(world) -> None:
    world.backend = ExemplarBackend()
    agent = world.agent(world.backend)
    trace = agent.run("What is the boat called?")
    other = agent.run("Who maintains billing?")
    world.learning.rate(trace.id, up=False)
    correction = world.learning.correct(trace.id, "Albatross")
    world.learning.correct(other.id, "Dana")
    world.learning.lessons.apply(
        [
            LessonDelta("add", "Name boats exactly.", evidence=(trace.id,), source="x"),
            LessonDelta("add", "Prefer full names.", evidence=(trace.id, other.id)),
        ]
    )
    tool_run, _ = world.ask("What is 2 plus 2?", [call("calculator", expression="2+2"), final("4")])
    adopted = world.learning.refine(distill=False)
    assert adopted.status == ADOPTED
    in_force = world.learning.versions.active()
    assert any(e.trace_id == trace.id for e in in_force.exemplars)

    report = world.learning.forget("trace", trace.id[:8])
    assert report.id == trace.id
    assert report.deleted["traces"] == [trace.id]
    assert report.deleted["corrections"] == [correction.id]
    assert len(report.deleted["ratings"]) == 1
    assert [x for x in report.deleted["lessons"]] == [1]  # "Prefer full names" has other evidence
    assert in_force.id in report.deleted["prompt_versions"]
    assert report.active_prompt_after != in_force.id
    assert world.learning.versions.active().status == DEFAULT
    with pytest.raises(TraceNotFoundError):
        world.traces.get(trace.id)
    assert [c.trace_id for c in world.learning.corrections()] == [other.id]
    assert [x.text for x in world.learning.lessons.all()] == ["Prefer full names."]
    assert (
        world.conn.execute("SELECT COUNT(*) FROM steps WHERE trace_id = ?", (trace.id,)).fetchone()[
            0
        ]
        == 0
    )
    assert all(
        trace.id not in (r["report_json"] or "")
        for r in world.conn.execute("SELECT report_json FROM refinement_runs")
    )
    # The tool run and its experience are untouched.
    assert world.learning.experiences.all()[0].sources == [tool_run.id]


def test_forgetting_the_run_an_experience_came_from_takes_the_experience(world) -> None:
    first, _ = world.ask("What is 2 plus 2?", [call("calculator", expression="2+2"), final("4")])
    world.config.experience_similarity = 2.0  # no replay: the second run is planned too
    world.ask("What is 3 plus 3?", [call("calculator", expression="3+3"), final("6")])
    (experience,) = world.learning.experiences.all()
    assert len(experience.sources) == 2
    report = world.learning.forget("trace", first.id)
    assert report.deleted["experiences"] == [experience.id]  # its task quoted the first run


def test_forgetting_a_correction_lesson_and_experience(world) -> None:
    wrong, _ = world.ask("Boat name?", [final("Titanic")])
    correction = world.learning.correct(wrong.id, "Albatross")
    world.learning.lessons.apply(
        [
            LessonDelta(
                "add",
                "Name boats exactly.",
                evidence=(wrong.id,),
                source=f"correction:{correction.id}",
            )
        ]
    )
    report = world.learning.forget("correction", str(correction.id))
    assert report.deleted["corrections"] == [correction.id] and report.deleted["lessons"] == [1]
    trace, _ = world.ask("Boat name?", [final("I do not know")])
    assert "correction" not in trace.extra  # forgotten means not used any more

    world.learning.lessons.apply([LessonDelta("add", "Keep answers short.")])
    assert world.learning.forget("lesson", "2").deleted["lessons"] == [2]

    world.ask("What is 2 plus 2?", [call("calculator", expression="2+2"), final("4")])
    (experience,) = world.learning.experiences.all()
    assert world.learning.forget("experience", experience.id[:5]).deleted["experiences"] == [
        experience.id
    ]
    assert world.learning.experiences.all() == []
    assert world.conn.execute("PRAGMA foreign_key_check").fetchall() == []
