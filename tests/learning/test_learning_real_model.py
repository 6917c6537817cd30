"""The whole learning loop with the real embedded model (SmolLM2-135M) and the real MiniLM
embedder, at temperature 0 with a fixed seed: correct -> the same and a paraphrased question
get the correction; a task done once is replayed with one model call; refinement scores and
gates on the real model; exact replay of a real run. Kept to a handful of short generations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_core.agent import Agent
from agent_core.config import LearningConfig
from agent_core.learning import Learning
from agent_core.memory_db import open_memory_db
from agent_core.prompting import PromptBuilder
from agent_core.traces import TraceStore
from models.chat import GenerationSettings
from tests.fakes import ScriptedBackend, call, final
from tools.base import ToolRegistry
from tools.builtins.calculator import make_calculator
from tools.executor import ToolExecutor

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smol() -> Iterator[object]:
    from models.discovery import embedded_chat_model
    from models.llama_backend import LlamaCppBackend

    backend = LlamaCppBackend(embedded_chat_model(), n_ctx=2048)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from models.llama_embedder import LlamaCppEmbedder
    from models.minilm_gguf import default_embedding_gguf

    with LlamaCppEmbedder(default_embedding_gguf(tmp_path_factory.mktemp("models"))) as e:
        yield e


class Loop:
    def __init__(self, path: Path, smol, minilm, tools: list) -> None:
        self.conn = open_memory_db(path)
        self.traces = TraceStore(self.conn)
        self.smol = smol
        self.executor = ToolExecutor(ToolRegistry(tools))
        config = LearningConfig(eval_max_tokens=24)
        self.learning = Learning(
            self.conn,
            self.traces,
            config,
            embedder=minilm,
            executor=lambda: self.executor,
            backend=lambda: smol,
            builder=self.builder,
            seed=42,
        )

    def builder(self) -> PromptBuilder:
        return PromptBuilder(count_tokens=self.smol.count_tokens)

    def agent(self, backend=None) -> Agent:
        return Agent(
            backend or self.smol,
            self.executor,
            self.traces,
            self.builder(),
            GenerationSettings(temperature=0.0, seed=42, max_tokens=24),
            learning=self.learning.memory,
            system_prompt=self.learning.active_prompt,
        )


def test_a_correction_takes_effect_at_once_and_refinement_gates_it(tmp_path, smol, minilm):
    loop = Loop(tmp_path / "memory.db", smol, minilm, tools=[])
    question = "Who maintains the billing service?"
    wrong = loop.agent().run(question)
    assert wrong.status == "ok" and wrong.extra["model_calls"] == 1
    assert "Dana Scully" not in (wrong.final_answer or "")
    correction = loop.learning.correct(wrong.id, "Dana Scully")

    for asked in (question, "Who is the maintainer of the billing service?"):
        trace = loop.agent().run(asked)
        assert trace.final_answer.startswith("Dana Scully (your correction of ")
        assert trace.extra["correction"]["correction_id"] == correction.id
        assert trace.extra["model_calls"] == 0

    other = loop.agent().run("Who maintains the search service?")  # similar words, not the same
    assert "correction" not in other.extra and other.extra["model_calls"] == 1

    result = loop.learning.refine()
    assert result.status in ("adopted", "rejected"), result.reason
    assert result.cases == 2  # the correction, pinned; the search-service question, a guard
    guard = f"guard:{other.id}"
    assert result.regressions in ([], [guard])
    if result.regressions:  # the candidate's exemplar answered the other question too
        given = {r["case_id"]: r for r in result.report["candidate"]["results"]}[guard]
        assert "Dana Scully" in given["answer"] and result.status == "rejected"
    if result.status == "adopted":
        assert result.candidate_score >= result.current_score
        assert loop.learning.versions.active().id == result.candidate_id
    assert loop.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_repeated_task_is_replayed_without_planning_calls(tmp_path, smol, minilm):
    loop = Loop(tmp_path / "memory.db", smol, minilm, tools=[make_calculator()])
    taught = ScriptedBackend([call("calculator", expression="17*23"), final("391")])
    first = loop.agent(taught).run("What is 17 times 23?")  # a run that went well
    (experience,) = loop.learning.experience_list()
    assert experience.sources == [first.id]

    # The same task: the script's call gives the recorded result, so the recorded answer
    # stands and the model is not asked at all.
    again = loop.agent().run("What is 17 times 23?")
    assert again.extra["replayed_from"] == experience.id
    assert again.extra["replay"]["answer"] == "recorded"
    assert again.final_answer == "391" and again.extra["model_calls"] == 0

    # The same shape with other numbers: the script plans, the real model only answers.
    other = loop.agent().run("What is 4 times 5?")
    assert other.extra["replayed_from"] == experience.id
    assert other.extra["replay"]["fell_back"] is None
    replayed, *answering = other.steps
    assert replayed.response_schema is None  # no model call planned it
    assert (replayed.tool_name, replayed.observation) == ("calculator", "4*5 = 20")
    # After the script only the answer is left: the model may not call tools again (the
    # 135M model does not always manage valid JSON, so it may take more than one try).
    assert answering and all("anyOf" not in s.response_schema for s in answering)
    assert other.extra["model_calls"] == len(answering)

    report = loop.learning.replay(other.id)
    assert report.steps[0].status == "match" and report.first_divergence is None
