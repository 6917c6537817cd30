"""Offline refinement: the no-regression gate, every version kept, rollback, crash safety,
and the idle-time schedule."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from agent_core.config import LearningConfig
from agent_core.learning.errors import RollbackRefusedError
from agent_core.learning.evaluation import answer_matches, build_replay_set
from agent_core.learning.lessons import ACTIVE, LessonDelta
from agent_core.learning.refine import RefinementScheduler
from agent_core.learning.versions import ADOPTED, DEFAULT, REJECTED, Exemplar, compose
from tests.fakes import final
from tests.learning.fakes import ExemplarBackend

FACTS = {
    "Who maintains the billing service?": "Dana",
    "Which port does billing use?": "8443",
    "What is the boat called?": "Albatross",
}


def corrected_world(world):
    """Ask each question (the model does not know), then correct every answer."""
    world.backend = ExemplarBackend()
    agent = world.agent(world.backend)
    for question, answer in FACTS.items():
        trace = agent.run(question)
        assert trace.final_answer == "I do not know."
        world.learning.correct(trace.id, answer)
    return world


def consistent(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_answer_matching() -> None:
    assert answer_matches("Dana", "It is dana.")
    assert not answer_matches("Dana", "Daniel")
    assert answer_matches("the blue boat in the harbour", "The blue boat is in the harbour")
    assert not answer_matches("", "anything")


def test_the_replay_set_pins_corrections(world) -> None:
    corrected_world(world)
    cases = build_replay_set(world.traces, world.learning.feedback)
    assert [c.kind for c in cases] == ["correction"] * 3
    assert all(c.pinned for c in cases)
    assert {c.expected for c in cases} == set(FACTS.values())


def test_a_candidate_that_reproduces_corrections_is_adopted(world) -> None:
    corrected_world(world)
    before = world.learning.versions.active()
    assert before.status == DEFAULT
    result = world.learning.refine(distill=False)
    assert result.status == ADOPTED, result.reason
    assert (result.current_score, result.candidate_score) == (0.0, 1.0)
    active = world.learning.versions.active()
    assert active.id == result.candidate_id and len(active.exemplars) == 3
    # The adopted version is what the agent now runs with (and what its traces record).
    trace = world.agent(ExemplarBackend(), learning=False).run("What is the boat called?")
    assert trace.final_answer == "I do not know."  # without the hook, the packaged prompt
    agent = world.agent(ExemplarBackend())
    world.config.correction_strong_similarity = 1.1  # let the model answer, not the memory
    trace = agent.run("What is the boat called?")
    assert trace.final_answer == "Albatross" and trace.prompt_version == active.id
    # Scoring never ran a tool, never wrote a trace of its own into memory.db.
    assert len(world.traces.list()) == 5


def test_a_bad_candidate_that_drops_a_correction_is_refused(world) -> None:
    corrected_world(world)
    adopted = world.learning.refine(distill=False)
    good = world.learning.versions.active()
    dropped = good.exemplars[0]
    bad = compose(
        world.learning.versions.base_text,
        [{"id": 99, "text": "Keep answers short."}],
        good.exemplars[1:],
        parent_id=good.id,
    )
    result = world.learning.refine(candidate=bad)
    assert result.status == REJECTED
    assert result.regressions == [dropped.source]
    assert "regresses on pinned correction" in result.reason
    assert world.learning.versions.active().id == good.id  # still in force
    versions = {v.id: v for v in world.learning.prompt_versions()}
    assert versions[bad.id].status == REJECTED and versions[bad.id].score == pytest.approx(
        2 / 3, abs=1e-3
    )
    assert versions[adopted.candidate_id].status == ADOPTED
    assert any(v.status == DEFAULT for v in versions.values())  # every version is kept


def test_a_lower_score_is_refused_even_without_pinned_cases(world) -> None:
    world.backend = ExemplarBackend()
    agent = world.agent(world.backend)
    for question in FACTS:
        world.learning.rate(agent.run(question).id, up=False)  # "I do not know." is wrong
    base = world.learning.versions.base_text
    knows = compose(
        base, [], [Exemplar(q, a, f"manual:{i}", "") for i, (q, a) in enumerate(FACTS.items())]
    )
    assert world.learning.refine(candidate=knows).status == ADOPTED
    plain = compose(base, [], [])  # the packaged prompt again: it says "I do not know."
    result = world.learning.refine(candidate=plain)
    assert result.status == REJECTED and "below the current" in result.reason
    assert (result.current_score, result.candidate_score) == (1.0, 0.0)
    assert world.learning.versions.active().id == knows.id
    assert world.learning.versions.get(plain.id).status == DEFAULT  # still one to go back to


def test_rollback_is_one_action(world) -> None:
    corrected_world(world)
    result = world.learning.refine(distill=False)
    default = next(v for v in world.learning.prompt_versions() if v.status == DEFAULT)
    world.learning.rollback(default.id)
    assert world.learning.versions.active().id == default.id
    world.learning.rollback(result.candidate_id[:8])
    assert world.learning.versions.active().id == result.candidate_id
    rejected = compose(world.learning.versions.base_text, [], [])  # never in force
    rejected.id, rejected.status = "f" * 16, REJECTED
    world.learning.versions.save(rejected)
    with pytest.raises(RollbackRefusedError):
        world.learning.rollback("f" * 16)


def test_a_crash_mid_refinement_leaves_the_current_version_and_a_consistent_db(world) -> None:
    corrected_world(world)
    before = world.learning.versions.active().id
    world.backend = ExemplarBackend(fail_after=4)  # dies while scoring the candidate
    with pytest.raises(RuntimeError, match="the model crashed"):
        world.learning.refine(distill=False)
    assert world.learning.versions.active().id == before
    (run,) = world.learning.refiner.runs()
    assert run["status"] == "failed" and "the model crashed" in run["reason"]
    statuses = {v.status for v in world.learning.prompt_versions()}
    assert statuses == {DEFAULT, "abandoned"}
    consistent(world.conn)
    world.backend = ExemplarBackend()  # and the next refinement works
    assert world.learning.refine(distill=False).status == ADOPTED


def test_a_hard_crash_is_recovered_on_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from agent_core.config import LearningConfig
        from agent_core.learning import Learning
        from agent_core.memory_db import open_memory_db
        from agent_core.prompting import PromptBuilder
        from agent_core.traces import TraceStore
        from tests.learning.fakes import ExemplarBackend, WordsEmbedder
        from tools.base import ToolRegistry
        from tools.executor import ToolExecutor

        conn = open_memory_db(Path({str(db)!r}))
        traces = TraceStore(conn)
        backend = ExemplarBackend()
        executor = ToolExecutor(ToolRegistry([]))
        learning = Learning(conn, traces, LearningConfig(), embedder=WordsEmbedder(),
            executor=lambda: executor, backend=lambda: backend,
            builder=lambda: PromptBuilder(count_tokens=lambda t: len(t.split())))
        from agent_core.agent import Agent
        from models.chat import GenerationSettings
        builder = PromptBuilder(count_tokens=lambda t: len(t.split()))
        agent = Agent(backend, executor, traces, builder, GenerationSettings(temperature=0),
            learning=learning.memory, system_prompt=learning.active_prompt)
        for q, a in {FACTS!r}.items():
            learning.correct(agent.run(q).id, a)
        real_chat = backend.chat
        def chat(*args, **kw):
            if len(backend.requests) >= 7:  # mid-way through scoring the candidate
                os._exit(9)  # no exception handler, no cleanup: like a power cut
            return real_chat(*args, **kw)
        backend.chat = chat
        learning.refine(distill=False)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    from agent_core.learning import Learning
    from agent_core.memory_db import open_memory_db
    from agent_core.traces import TraceStore

    conn = open_memory_db(db)
    consistent(conn)
    learning = Learning(conn, TraceStore(conn), LearningConfig())
    assert learning.versions.active().status == DEFAULT
    # Healed at start: the process that ran it is gone, so no need to wait for the heartbeat.
    assert [r["status"] for r in learning.refiner.runs()] == ["interrupted"]
    assert learning.refiner.recover(stale_after_s=0) == 0
    assert {v.status for v in learning.prompt_versions()} == {DEFAULT, "abandoned"}
    consistent(conn)


def test_refinement_distils_lessons_and_tries_them(world) -> None:
    corrected_world(world)
    world.learning.lessons.apply([LessonDelta("add", "Answer with the name only.")])
    result = world.learning.refine()  # the exemplar "model" proposes no ops
    assert result.status == ADOPTED
    active = world.learning.versions.active()
    assert [x["text"] for x in active.lessons] == ["Answer with the name only."]
    assert "Answer with the name only." in active.system_prompt.lessons
    lesson = world.learning.lessons.get(1)
    # Tried in the adopted version, but the exemplars did it alone (scored again without the
    # lesson, the candidate does as well): no credit.
    assert result.report["lessons_helped"] is False and lesson.helpful == 0
    assert {i.source for i in world.learning.refiner.lesson_inputs()} == set()  # all seen
    world.learning.lessons.apply([LessonDelta("agree", lesson_id=1)] * 2)
    assert world.learning.lessons.get(1).status == ACTIVE


def test_nothing_to_score_is_skipped(world) -> None:
    world.backend = ExemplarBackend()
    result = world.learning.refine()
    assert result.status == "skipped" and result.cases == 0


# -- the schedule ---------------------------------------------------------------------------
class FakeScheduler:
    def __init__(self) -> None:
        self.jobs: list[dict] = []
        self.running = False

    def add_job(self, func, trigger, **kw) -> None:
        self.jobs.append({"func": func, "trigger": trigger, **kw})

    def start(self) -> None:
        self.running = True

    def shutdown(self, wait: bool = True) -> None:
        self.running = False


def test_refinement_runs_when_idle_at_most_once_a_day(world) -> None:
    corrected_world(world)
    now = [world.traces.get(world.traces.list()[0]["id"]).created_at]
    config = LearningConfig(refine_idle_minutes=15, refine_max_per_day=1)
    scheduler = world.learning.scheduler(clock=lambda: now[0])
    scheduler.config = config
    assert "active" in scheduler.why_not()
    assert scheduler.tick() is None
    now[0] += 16 * 60
    assert scheduler.why_not() is None
    assert scheduler.tick().status == ADOPTED
    now[0] += 3600
    assert "already ran 1 time" in scheduler.why_not()
    now[0] += 86400
    assert scheduler.why_not() is None
    scheduler.note_activity()
    assert "active" in scheduler.why_not()


def test_the_job_is_registered_and_user_activity_cancels_a_run(world) -> None:
    fake = FakeScheduler()
    scheduler = world.learning.scheduler(check_every_s=60)
    scheduler.start(fake)
    (job,) = fake.jobs
    assert job["func"] == scheduler.tick and job["trigger"] == "interval"
    assert job["seconds"] == 60 and job["max_instances"] == 1 and fake.running
    scheduler._cancel = threading.Event()
    scheduler.note_activity()
    assert scheduler._cancel.is_set()
    scheduler.shutdown()
    assert not fake.running


def test_scheduled_refinement_off(world) -> None:
    scheduler = RefinementScheduler(
        world.learning.refiner, LearningConfig(refine_max_per_day=0), last_activity=lambda: None
    )
    assert "off" in scheduler.why_not()


def test_a_case_is_scored_with_the_tools_its_run_was_offered(world) -> None:
    world.backend = ExemplarBackend()
    with_tools = world.agent(world.backend).run("What is the boat called?")
    world.learning.correct(with_tools.id, "Albatross")
    bare = world.agent(world.backend)
    bare.executor = type(world.executor)(type(world.executor.registry)([]))
    without = bare.run("Who maintains billing?")
    world.learning.correct(without.id, "Dana")
    cases = {c.trace_id: c for c in build_replay_set(world.traces, world.learning.feedback)}
    assert set(cases[with_tools.id].offered) == set(world.executor.registry.names())
    assert cases[without.id].offered == ()
    world.learning.refine(distill=False)
    tool_blocks = [bool(r["tools"]) for r in world.backend.requests[-4:]]
    assert sorted(tool_blocks) == [False, False, True, True]


def test_a_run_of_a_living_process_is_left_alone_until_it_dies(world) -> None:
    import json
    import time

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with world.conn:
            world.conn.execute(
                "INSERT INTO refinement_runs (started_at, status, report_json) "
                "VALUES (?, 'running', ?)",
                (time.time() - 3600, json.dumps({"pid": sleeper.pid})),
            )
        refiner = world.learning.refiner
        assert refiner.recover() == 0  # an hour without a beat, but its process is alive
        assert [r["status"] for r in refiner.runs()] == ["running"]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert refiner.recover() == 1
    assert [r["status"] for r in refiner.runs()] == ["interrupted"]


def test_the_schedule_says_when_the_next_run_is_due_and_how_the_last_ended(world) -> None:
    corrected_world(world)
    last = world.traces.get(world.traces.list()[0]["id"]).created_at
    now = [last + 60]
    world.config.refine_idle_minutes, world.config.refine_max_per_day = 15, 1
    scheduler = world.learning.scheduler(clock=lambda: now[0])
    status = world.learning.refinement_schedule()
    assert status["last_run"] is None and not status["scheduled"]
    assert status["next_run_at"] == pytest.approx(last + 15 * 60)  # after 15 idle minutes
    assert "active" in status["why_not"]
    now[0] = last + 16 * 60
    assert world.learning.refinement_schedule()["next_run_at"] == pytest.approx(now[0])
    assert scheduler.tick().status == ADOPTED
    status = world.learning.refinement_schedule()
    assert status["last_run"]["status"] == ADOPTED and status["last_run"]["candidate_score"] > 0
    # Once a day: due a day after the run started (the run's own clock).
    assert status["next_run_at"] == pytest.approx(status["last_run"]["started_at"] + 86400)
    scheduler.start(FakeScheduler())
    assert world.learning.refinement_schedule()["scheduled"]
    world.config.refine_max_per_day = 0
    assert world.learning.refinement_schedule()["next_run_at"] is None


def test_a_run_a_crash_stopped_shows_as_interrupted_in_the_schedule(world) -> None:
    import json
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with world.conn:
        world.conn.execute(
            "INSERT INTO refinement_runs (started_at, status, report_json) "
            "VALUES (?, 'running', ?)",
            (time.time() - 5, json.dumps({"pid": dead.pid})),
        )
    last = world.learning.refinement_schedule()["last_run"]
    assert last["status"] == "interrupted" and "stopped" in last["reason"]


class OverreachingBackend(ExemplarBackend):
    """A small model's habit: a question that shares a content word with an exemplar's
    question gets that exemplar's answer."""

    def chat(self, messages, settings, **kw):  # type: ignore[no-untyped-def]
        result = super().chat(messages, settings, **kw)
        question = messages[-1]["content"].strip().splitlines()[-1].strip().lower()
        words = set(re.findall(r"\w+", question)) - {"which", "what", "does", "is", "the", "use"}
        for q, a in re.findall(r"^Q: (.*)\nA: (.*)$", messages[0]["content"], re.MULTILINE):
            if words & set(re.findall(r"\w+", q.lower())):
                return dataclasses.replace(result, text=final(a.strip()))
        return result


def test_guards_are_other_questions_close_to_a_correction(world) -> None:
    corrected_world(world)
    agent = world.agent(world.backend)
    close = agent.run("Which port does search use?")  # another service: a guard
    rated = agent.run("Which port does the printer use?")
    world.learning.rate(rated.id, up=False)  # rated runs are cases of their own
    agent.run("which port does billing use")  # the corrected question again: no guard
    cases = build_replay_set(world.traces, world.learning.feedback, guards=5, same_need=0.8)
    guards = [c for c in cases if c.kind == "guard"]
    assert [c.trace_id for c in guards] == [close.id]
    (guard,) = guards
    assert guard.pinned and set(guard.forbidden) == set(FACTS.values())
    assert build_replay_set(world.traces, world.learning.feedback) == cases[:-1]  # opt-in


def test_a_candidate_whose_exemplars_leak_into_other_questions_is_refused(world) -> None:
    corrected_world(world)
    world.backend = OverreachingBackend()
    guarded = world.agent(world.backend, learning=False).run("Which port does search use?")
    assert guarded.final_answer == "I do not know."  # the packaged prompt has no exemplar
    result = world.learning.refine(distill=False)
    # Every correction is now reproduced (0 -> 1 on them), but "8443" leaks into the
    # question about another service: refused.
    assert result.status == REJECTED
    assert result.regressions == [f"guard:{guarded.id}"]
    assert result.reason == f"gives a corrected answer to another question: guard:{guarded.id}"
    assert world.learning.versions.active().status == DEFAULT
    detail = {r["case_id"]: r for r in result.report["candidate"]["results"]}
    assert detail[f"guard:{guarded.id}"]["detail"] == "gives a corrected answer: '8443'"
