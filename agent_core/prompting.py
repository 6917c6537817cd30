"""Prompt assembly: stable parts first, volatile parts last, each within a token budget.

Order (design.md): system prompt version -> tool specs -> active lessons -> conversation
history -> (this turn) workflows of similar earlier tasks, retrieved passages, verified facts
from the user's corrections and approved answers, and the question. Everything before the
history is identical from turn to turn, so llama.cpp's prefix cache does not re-read it.
Nothing is cut silently: what is dropped is returned and recorded on the trace.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from typing import Any

import jinja2

from agent_core.protocols import DECIDE, ConversationProtocol
from models.chat import Message, ToolSpec
from models.errors import JackdawError
from tools.base import Tool

_env = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


def load_template(name: str) -> str:
    return resources.files("agent_core.prompts").joinpath(name).read_text(encoding="utf-8")


def render(name: str, **values: Any) -> str:
    return _env.from_string(load_template(name)).render(**values)


# The frame passages.txt puts around the notes; a small model sometimes copies it back first.
_ECHO_START = re.compile(r"\s*From my files:", re.I)
_ECHO_END = re.compile(r"Answer from these passages if they hold the answer\b[.:]?", re.I)
_ECHO_LEFTOVER = re.compile(r"\A(?:\s*(?:---[^\n]*|/\S*)\n)+")


def without_echoed_notes(answer: str) -> str:
    """``answer`` without the notes frame of its prompt, when the model copied that back
    first (measured: "From my files: --- recipes.md ... Answer from these passages if they
    hold the answer: The total is 200 + 200 = 400 g."): what follows the frame is the answer.
    An echo with nothing after the frame is no answer: ""."""
    if not _ECHO_START.match(answer):
        return answer
    ends = list(_ECHO_END.finditer(answer))
    if not ends:
        return ""
    return _ECHO_LEFTOVER.sub("", answer[ends[-1].end() :]).strip()


# How facts.txt labels a fact; the model copies the label after answers it did not take
# from the fact (measured: "... is 0415. (your correction of 2026-11-30)", the correction
# said 1937). Where an answer comes from is the app's to say (the card's marker).
_COPIED_CITATION = re.compile(
    r"\s*\((?:your correction of|you approved this answer on|the answer you rated up on)"
    r" \d{4}-\d{2}-\d{2}\)",
    re.I,
)


def without_copied_citations(answer: str) -> str:
    """``answer`` without the labels of the facts in its prompt, copied by the model."""
    return _COPIED_CITATION.sub("", answer).strip()


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class PromptTooLargeError(JackdawError):
    hint = "Use fewer tools or lessons, or raise [agent] system_budget_tokens in config.toml."


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation."""

    question: str
    answer: str


@dataclass(frozen=True)
class Passage:
    """Retrieved text that may help answer; ``source`` is what the answer cites."""

    source: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifiedFact:
    """A question the user corrected, and the answer they gave (the learning loop)."""

    question: str
    answer: str
    correction_id: int  # of the correction; of the rating for a confirmed answer
    created_at: float
    similarity: float = 1.0  # of this turn's question to the corrected one
    kind: str = "correction"  # correction | confirmed (an answer the user rated up)
    anchored_in: str = ""  # the note that holds its answer (shown below correction_similarity)
    judged_by: str = ""  # the model that judged it answers this question (below, too)

    @property
    def date(self) -> str:
        return time.strftime("%Y-%m-%d", time.localtime(self.created_at))

    @property
    def cited_answer(self) -> str:
        """The corrected (or confirmed) answer, saying where it comes from."""
        if self.kind == "confirmed":
            return f"{self.answer} (the answer you rated up on {self.date})"
        if self.judged_by:  # asked in other words: say which question it corrected
            return f'{self.answer} (your correction of {self.date}, to "{self.question}")'
        return f"{self.answer} (your correction of {self.date})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "date": self.date}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifiedFact:
        return cls(**{k: v for k, v in data.items() if k != "date"})


@dataclass(frozen=True)
class Guidance:
    """The workflow of an earlier, similar task that went well: a plan, not an order."""

    task: str
    workflow: str
    experience_id: str
    similarity: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guidance:
        return cls(**data)


@dataclass(frozen=True)
class SystemPrompt:
    """What a prompt version fixes: the system text and the lessons that follow the tools."""

    text: str
    lessons: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return prompt_version_id(self.text, self.lessons)


def prompt_version_id(text: str, lessons: Sequence[str] = ()) -> str:
    """The hash recorded on every trace; without lessons it is the hash of the text alone."""
    if not lessons:
        return prompt_hash(text)
    return prompt_hash(text + "\n\nLessons:\n" + "\n".join(lessons))


@dataclass(frozen=True)
class BuiltPrompt:
    messages: list[Message]
    prompt_version: str
    block_tokens: dict[str, int]
    dropped_turns: list[int]  # indices into the history, oldest first
    dropped_passages: list[int]
    passages: list[Passage]
    facts: list[VerifiedFact] = field(default_factory=list)
    guidance: list[Guidance] = field(default_factory=list)
    dropped_facts: list[int] = field(default_factory=list)
    dropped_guidance: list[int] = field(default_factory=list)
    tool_specs: list[ToolSpec] | None = None  # for the chat template (native tool calls)


@dataclass
class PromptBuilder:
    count_tokens: Callable[[str], int]
    system_budget: int = 1536
    history_budget: int = 1024
    retrieval_budget: int = 768
    system_text: str = field(default_factory=lambda: load_template("system.txt"))
    facts_budget: int = 256
    guidance_budget: int = 256
    # How tools reach the model: in its own chat template (native) or described in the text.
    protocol: ConversationProtocol = DECIDE

    @property
    def version(self) -> str:
        return prompt_hash(self.system_text)

    def system_block(
        self, tools: Sequence[Tool], lessons: Sequence[str]
    ) -> tuple[str, dict[str, int]]:
        parts = {"system": self.system_text.strip()}
        tools_text = self.protocol.system_tools_text(tools)
        if tools_text:
            parts["tools"] = render("tools.txt", tools_text=tools_text).strip()
        if lessons:
            parts["lessons"] = "Lessons from earlier work:\n" + "\n".join(f"- {x}" for x in lessons)
        tokens = {name: self.count_tokens(text) for name, text in parts.items()}
        specs = self.protocol.specs(tools)
        if specs:  # written by the chat template; counted as their JSON
            tokens["tools"] = self.count_tokens(json.dumps(specs, separators=(",", ":")))
        total = sum(tokens.values())
        if total > self.system_budget:
            raise PromptTooLargeError(
                f"The system prompt, tool specs and lessons take {total} tokens; the budget is "
                f"{self.system_budget} ({', '.join(f'{k} {v}' for k, v in tokens.items())})."
            )
        return "\n\n".join(parts.values()), tokens

    def build(
        self,
        question: str,
        *,
        tools: Sequence[Tool] = (),
        lessons: Sequence[str] = (),
        history: Sequence[Turn] = (),
        passages: Sequence[Passage] = (),
        facts: Sequence[VerifiedFact] = (),
        guidance: Sequence[Guidance] = (),
        system: SystemPrompt | None = None,
    ) -> BuiltPrompt:
        """``system`` (a prompt version) replaces ``self.system_text`` and ``lessons``."""
        if system is not None:
            builder = (
                self if system.text == self.system_text else replace(self, system_text=system.text)
            )
            text, tokens = builder.system_block(tools, system.lessons)
            version = system.version
        else:
            text, tokens = self.system_block(tools, lessons)
            version = self.version

        # History policy: keep the most recent whole turns that fit; drop the oldest first.
        kept: list[tuple[int, Turn]] = []
        used = 0
        for index in range(len(history) - 1, -1, -1):
            turn = history[index]
            cost = self.count_tokens(turn.question) + self.count_tokens(turn.answer) + 8
            if used + cost > self.history_budget:
                break
            kept.insert(0, (index, turn))
            used += cost
        dropped_turns = list(range(0, kept[0][0] if kept else len(history)))
        tokens["history"] = used

        # Passages come ranked best first: keep them in order while they fit.
        chosen: list[Passage] = []
        dropped_passages: list[int] = []
        used = 0
        for index, passage in enumerate(passages):
            cost = self.count_tokens(passage.text) + self.count_tokens(passage.source) + 4
            if used + cost > self.retrieval_budget:
                dropped_passages.append(index)
                continue
            chosen.append(passage)
            used += cost
        tokens["passages"] = used

        # Facts and workflows come best first too; what does not fit is dropped and reported.
        kept_facts, dropped_facts, tokens["facts"] = _fit(
            facts,
            lambda f: self.count_tokens(f.question) + self.count_tokens(f.answer) + 12,
            self.facts_budget,
        )
        kept_guidance, dropped_guidance, tokens["guidance"] = _fit(
            guidance,
            lambda g: self.count_tokens(g.task) + self.count_tokens(g.workflow) + 6,
            self.guidance_budget,
        )
        # The facts come last, after the question: with each paraphrase of the learning
        # curve shown its own learnt answer (bench_learning_ceiling.py, 67 needs), the 0.5B
        # model answered 98% right with them there, 91% with them between the notes and the
        # question, 82% with them as earlier turns of the conversation.
        final_user = render(
            "passages.txt",
            passages=chosen,
            facts=render("facts.txt", facts=kept_facts).strip() if kept_facts else "",
            question=question,
        ).strip()
        if kept_guidance:
            final_user = (
                render("workflows.txt", guidance=kept_guidance).strip() + "\n\n" + final_user
            )
        tokens["question"] = self.count_tokens(question)

        messages: list[Message] = [{"role": "system", "content": text}]
        for _, turn in kept:
            messages.append({"role": "user", "content": turn.question})
            messages.append({"role": "assistant", "content": turn.answer})
        messages.append({"role": "user", "content": final_user})
        return BuiltPrompt(
            messages=messages,
            prompt_version=version,
            block_tokens=tokens,
            dropped_turns=dropped_turns,
            dropped_passages=dropped_passages,
            passages=chosen,
            facts=kept_facts,
            guidance=kept_guidance,
            dropped_facts=dropped_facts,
            dropped_guidance=dropped_guidance,
            tool_specs=self.protocol.specs(tools),
        )


def _fit(
    items: Sequence[Any], cost: Callable[[Any], int], budget: int
) -> tuple[list[Any], list[int], int]:
    """Keep ``items`` in order while they fit in ``budget``; return kept, dropped indices, used."""
    kept: list[Any] = []
    dropped: list[int] = []
    used = 0
    for index, item in enumerate(items):
        price = cost(item)
        if used + price > budget:
            dropped.append(index)
            continue
        kept.append(item)
        used += price
    return kept, dropped, used


def final_answer_json(answer: str) -> str:
    """An answer in the JSON action shape of traces recorded before free-text answers (the
    SFT export of those)."""
    return json.dumps({"action": "final_answer", "answer": answer}, ensure_ascii=False)
