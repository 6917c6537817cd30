"""Below the similarity where a learnt fact goes to the model by similarity alone, a judge
model decides whether it answers the new question (agent_core/learning/judge.py): the same
need in other words and a neighbouring need stand at the same similarities there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_core.config import Config, Paths
from agent_core.learning.judge import JudgeBackend, ModelJudge, judge_model
from agent_core.learning.loop import _judge_source
from agent_core.prompting import VerifiedFact
from agent_core.services import Services
from models.download import catalogue_entry, downloads_dir
from models.errors import JackdawError
from tests.fakes import ScriptedBackend, final
from tests.learning.fakes import FakeJudge, cosine

TAUGHT = "What is my blood type?"
ANSWER = "A negative."
ASKED = "Which blood group do I have, my type?"
NEIGHBOUR = "Which blood group session do I have?"  # nearer to ASKED in words


def _teach(world, question: str = TAUGHT, answer: str = ANSWER) -> None:
    trace, _ = world.ask(question, [final(answer)])
    world.learning.rate(trace.id, up=True)


def _judged_ground(world, similarity: float) -> None:
    """Thresholds so that ``similarity`` is too far for the fact to go to the model by
    similarity, near enough for the judge to be asked."""
    world.config.correction_similarity = similarity + 0.05
    world.config.correction_strong_similarity = similarity + 0.1
    world.config.judged_fact_similarity = similarity - 0.05


def _with_judge(world, judge: FakeJudge) -> FakeJudge:
    world.learning.memory.judge = judge
    return judge


def test_a_fact_the_judge_accepts_goes_to_the_model(world) -> None:
    _teach(world)
    _judged_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    judge = _with_judge(world, FakeJudge({TAUGHT}))
    trace, backend = world.ask(ASKED, [final("A negative.")])
    assert judge.asked == [(ASKED, TAUGHT)]
    assert ANSWER in backend.requests[0]["messages"][-1]["content"]
    (fact,) = trace.extra["corrections"]
    assert (fact["question"], fact["judged_by"]) == (TAUGHT, "judge-model")
    assert trace.extra["learning_calls"] == [{"purpose": "same_need", "model": "judge-model"}]
    assert trace.extra["model_calls"] == 2  # the judge's call counts
    assert "related_fact" not in trace.extra  # it went to the model: nothing beside it
    assert "correction" not in trace.extra  # an up-rated answer is read by the model, not said


def _correct(world, question: str = TAUGHT, answer: str = ANSWER) -> None:
    trace, _ = world.ask(question, [final("B positive.")])
    world.learning.correct(trace.id, answer)


def test_a_correction_the_judge_accepts_is_said_in_the_users_words(world) -> None:
    _correct(world)
    _judged_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    _with_judge(world, FakeJudge({TAUGHT}))
    trace, backend = world.ask(ASKED, [])  # the chat model is not asked
    assert backend.requests == []
    date = trace.extra["correction"]["date"]
    assert trace.final_answer == f'{ANSWER} (your correction of {date}, to "{TAUGHT}")'
    assert trace.extra["correction"]["judged_by"] == "judge-model"
    assert trace.extra["learning_calls"] == [{"purpose": "same_need", "model": "judge-model"}]
    assert trace.extra["model_calls"] == 1  # the judgement only


def test_a_judged_correction_naming_another_thing_goes_to_the_model(world) -> None:
    asked = "Which blood group does Mara have, her type?"  # a name the taught one lacks
    _correct(world)
    _judged_ground(world, cosine(world.embedder, TAUGHT, asked))
    _with_judge(world, FakeJudge({TAUGHT}))  # the judge errs: the model still reads it
    trace, backend = world.ask(asked, [final("I do not know Mara's blood group.")])
    assert len(backend.requests) == 1 and "correction" not in trace.extra
    assert trace.extra["corrections"][0]["judged_by"] == "judge-model"


def test_a_fact_the_judge_refuses_stays_out_and_is_shown_to_the_person(world) -> None:
    _teach(world)
    similarity = cosine(world.embedder, TAUGHT, ASKED)
    _judged_ground(world, similarity)
    world.config.related_fact_similarity = similarity - 0.05
    _with_judge(world, FakeJudge(set()))
    trace, backend = world.ask(ASKED, [final("I do not know.")])
    assert ANSWER not in backend.requests[0]["messages"][-1]["content"]
    assert "corrections" not in trace.extra
    assert trace.extra["related_fact"]["question"] == TAUGHT  # the person still judges


def _teach_two_in_the_judged_band(world) -> None:
    """TAUGHT and NEIGHBOUR (the nearer) both below correction_similarity, above the floor."""
    _teach(world)
    _teach(world, NEIGHBOUR, "Thursday at 18:00.")
    near = sorted([cosine(world.embedder, TAUGHT, ASKED), cosine(world.embedder, NEIGHBOUR, ASKED)])
    _judged_ground(world, near[0])
    world.config.correction_similarity = near[1] + 0.05


def test_the_nearest_fact_the_judge_accepts_is_taken(world) -> None:
    _teach_two_in_the_judged_band(world)
    judge = _with_judge(world, FakeJudge({TAUGHT}))
    trace, backend = world.ask(ASKED, [final("A negative.")])
    assert [q for _, q in judge.asked] == [NEIGHBOUR, TAUGHT]  # nearest first, refused
    assert [f["question"] for f in trace.extra["corrections"]] == [TAUGHT]
    assert "Thursday at 18:00." not in backend.requests[0]["messages"][-1]["content"]


def test_only_the_nearest_few_are_judged(world) -> None:
    _teach_two_in_the_judged_band(world)
    world.config.judged_candidates = 1
    judge = _with_judge(world, FakeJudge(set()))
    world.ask(ASKED, [final("I do not know.")])
    assert len(judge.asked) == 1


def test_a_fact_below_the_judged_floor_is_not_judged(world) -> None:
    _teach(world)
    similarity = cosine(world.embedder, TAUGHT, ASKED)
    _judged_ground(world, similarity)
    world.config.judged_fact_similarity = similarity + 0.01
    judge = _with_judge(world, FakeJudge({TAUGHT}))
    trace, _ = world.ask(ASKED, [final("I do not know.")])
    assert judge.asked == [] and "corrections" not in trace.extra


def test_without_a_judge_the_fact_stays_out(world) -> None:
    _teach(world)
    _judged_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    assert world.learning.memory.judge is None  # the test world configures none
    trace, backend = world.ask(ASKED, [final("I do not know.")])
    assert ANSWER not in backend.requests[0]["messages"][-1]["content"]
    assert "corrections" not in trace.extra


def test_a_failing_judge_is_switched_off_and_the_question_is_answered(world) -> None:
    _teach(world)
    _judged_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    judge = _with_judge(world, FakeJudge({TAUGHT}, fail=True))
    trace, _ = world.ask(ASKED, [final("I do not know.")])
    assert trace.status == "ok" and trace.final_answer == "I do not know."
    world.ask(ASKED, [final("I do not know.")])
    assert len(judge.asked) == 1  # not asked again this session
    assert world.learning.memory.judge is None


def test_the_model_judge_asks_one_constrained_question() -> None:
    fact = VerifiedFact(TAUGHT, ANSWER, 1, 0.0, 0.7, "confirmed")
    backend = ScriptedBackend(["Yes", "No", "yesterday"])
    judge = ModelJudge(backend)
    same, record = judge.same_need(ASKED, fact)
    assert same is True and record["model"] == "scripted"
    request = backend.requests[0]
    prompt = request["messages"][-1]["content"]
    assert TAUGHT in prompt and ANSWER in prompt and ASKED in prompt
    assert request["schema"] is None  # a grammar's lowercase "yes" distorts the odds
    assert request["settings"].temperature == 0 and request["settings"].max_tokens <= 4
    assert judge.same_need(ASKED, fact)[0] is False
    assert judge.same_need(ASKED, fact)[0] is False  # "yesterday" is not "yes"


# -- which model judges -------------------------------------------------------------------------
def _services(tmp_path: Path, judge_model: str) -> Services:
    config = Config()
    config.learning.judge_model = judge_model
    config.model.path = str(tmp_path / "chat.gguf")  # another file than the judge's
    (tmp_path / "chat.gguf").write_bytes(b"GGUF")
    home = tmp_path / "home"
    return Services(Paths(config_dir=home, data_dir=home, cache_dir=home / "cache"), config)


def _install_judge(models_dir: Path) -> Path:
    entry = catalogue_entry("qwen2.5-coder-1.5b")
    path = downloads_dir(models_dir) / entry.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


def test_auto_judges_with_the_larger_model_only_when_it_is_installed(tmp_path, monkeypatch) -> None:
    import models.assemble

    monkeypatch.setattr(models.assemble, "find_part", lambda part: None)  # no PyPI parts
    services = _services(tmp_path, "auto")
    assert _judge_source(services) is None
    path = _install_judge(services.paths.models_dir)
    source = _judge_source(services)
    assert isinstance(source, JudgeBackend) and source.locate() == path


def test_the_chat_model_judges_when_it_is_the_judges_file(tmp_path, monkeypatch) -> None:
    import models.assemble

    monkeypatch.setattr(models.assemble, "find_part", lambda part: None)
    services = _services(tmp_path, "auto")
    services.config.model.path = str(_install_judge(services.paths.models_dir))
    source = _judge_source(services)
    assert source is not None and not isinstance(source, JudgeBackend)  # loaded once, shared


def test_off_and_chat(tmp_path) -> None:
    _install_judge(_services(tmp_path, "off").paths.models_dir)
    assert _judge_source(_services(tmp_path, "off")) is None
    services = _services(tmp_path, "chat")
    source = _judge_source(services)
    assert source is not None and not isinstance(source, JudgeBackend)


def test_a_named_judge_that_is_not_installed_says_how_to_get_it(tmp_path) -> None:
    with pytest.raises(JackdawError) as caught:
        judge_model("qwen2.5-coder-1.5b", tmp_path / "models")
    assert "jackdaw models pull qwen2.5-coder-1.5b" in (caught.value.hint or "")
    assert _judge_source(_services(tmp_path, "qwen2.5-coder-1.5b")) is None  # logged, off


@pytest.mark.real_model
def test_the_model_judge_on_llama_cpp_says_yes_or_no(tmp_path) -> None:
    """The real default model through llama.cpp: its first word is yes or no, parsed. (It
    judges no better than chance, measured; the 1.5B model that does is not installed in CI.)"""
    from models.discovery import default_chat_model

    path = default_chat_model()
    source = JudgeBackend(lambda: path, n_threads=2)
    try:
        judge = ModelJudge(source)
        fact = VerifiedFact(TAUGHT, ANSWER, 1, 0.0, 0.7, "confirmed")
        same, record = judge.same_need("Which blood group am I?", fact)
        word = record["raw_output"].strip().lower()
        assert word.split()[0].strip(".,!") in {"yes", "no"}, word
        assert same is (word.split()[0].strip(".,!") == "yes")
        assert record["model"] == source().info.name and record["completion_tokens"] <= 4
    finally:
        source.close()


@pytest.mark.real_model
def test_the_installed_judge_tells_the_same_need_from_a_neighbouring_one(
    shared_models_dir,
) -> None:
    """The 1.5B judge that ``make setup`` installs, joined from its PyPI parts and run through
    llama.cpp: the blood group is the blood type; the flat's monthly rent is not the
    allotment's (0.72 similar, nearer than the flat's own, 0.67)."""
    found = judge_model("auto", shared_models_dir)
    if found is None:
        pytest.skip("the judge is not installed (make setup EXTRAS=test,packaging left it out)")
    source = JudgeBackend(found[1], n_threads=2)
    try:
        judge = ModelJudge(source)
        blood = VerifiedFact(TAUGHT, "Your blood type is A negative.", 1, 0.0, 0.71, "confirmed")
        allotment = VerifiedFact(
            "How much is the allotment rent?",
            "The allotment rent is £48 a year, due by 1 March.",
            2,
            0.0,
            0.72,
            "confirmed",
        )
        said = judge.same_need("Which blood group am I?", blood)
        assert said[0], said[1]["raw_output"]
        said = judge.same_need("What is our monthly rent?", allotment)
        assert not said[0], said[1]["raw_output"]
        assert said[1]["model"] == source().info.name
    finally:
        source.close()


def test_auto_joins_the_judge_from_its_installed_parts_only_when_first_needed(
    tmp_path, monkeypatch
) -> None:
    import models.assemble
    from models.catalog import QWEN25_CODER_15B

    monkeypatch.setattr(models.assemble, "find_part", lambda part: tmp_path / part.file)
    joined: list[object] = []
    monkeypatch.setattr(models.assemble, "model_file", lambda model, d: joined.append(model))
    models_dir = tmp_path / "models"
    found = judge_model("auto", models_dir)
    assert found is not None and found[0] == models_dir / QWEN25_CODER_15B.filename
    assert joined == []  # nothing joined or checked yet
    found[1]()
    assert joined == [QWEN25_CODER_15B]


def test_the_learning_panel_line_says_who_judges(tmp_path, monkeypatch) -> None:
    from agent_core.learning.loop import Learning

    def status(judge: Any, setting: str = "auto") -> str:
        config = Config()
        config.learning.judge_model = setting
        learning = Learning(None, None, config.learning, embedder=lambda: None, judge=judge)
        return learning.judge_status()

    gguf = tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    judged = status(JudgeBackend(lambda: gguf, path=gguf))
    assert judged == "Questions in other words: judged by Qwen2.5 Coder 1.5B Instruct · Q4_K_M"
    assert "the chat model" in status(lambda: ScriptedBackend([]), "chat")
    assert '"off"' in status(None, "off")
    assert "no judge installed" in status(None)
    config = Config()
    failed = Learning(None, None, config.learning, embedder=lambda: None, judge=lambda: None)
    failed.memory.judge = None  # what a judge whose model failed leaves behind
    assert "off for this session" in failed.judge_status()


def test_the_judge_is_prepared_ahead_of_its_first_judgement(tmp_path) -> None:
    from agent_core.learning.loop import Learning

    located: list[Path] = []
    gguf = tmp_path / "judge.gguf"
    source = JudgeBackend(lambda: located.append(gguf) or gguf, path=gguf)
    learning = Learning(None, None, Config().learning, embedder=lambda: None, judge=source)
    learning.prepare_judge()
    assert located == [gguf]  # joined and checked; the model itself is not loaded yet
    assert source._backend is None
    Learning(None, None, Config().learning, embedder=lambda: None).prepare_judge()  # no judge
