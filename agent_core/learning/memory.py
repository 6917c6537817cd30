"""The agent's view of the learning loop: :class:`LearningMemory` implements
:class:`agent_core.agent.Learning`.

Before a run it recalls, for the question:

* verified facts: active corrections, and answers the user rated up (that used no tools but
  reading files, whose notes and files have not changed since), whose question is at least
  ``correction_similarity`` similar and asks for the same kind of thing (a day is not a
  time: :func:`asks_alike`); at ``correction_strong_similarity`` or more, when the two
  questions also agree on their names and numbers (:func:`terms_agree`), the best one *is*
  the answer (the agent answers with it and cites "your correction of DATE" or "the answer
  you rated up on DATE", without a model call);
* below that, down to ``anchored_fact_similarity``: a correction whose question is the
  nearest learnt one, by ``anchored_fact_margin``, when the note passage ranked first for this
  question holds its answer's names and numbers (:func:`anchored`): the same need in other words
  ("What's the combination for the Kryptonite lock on my bike?" for "What is the code of my
  bike's D-lock?", 0.64). The answer of a question far off in words, or one the notes do not
  say, stays out (it hijacked close questions when shown by similarity alone);
* else, with a judge model (``[learning] judge_model``; :mod:`agent_core.learning.judge`),
  the nearest of the ``judged_candidates`` nearest learnt facts, down to
  ``judged_fact_similarity``, that it says answers this question ("Which blood group am I?"
  for "What is my blood type?", 0.71; not "What is our monthly rent?" for the allotment's);
  a correction the judge accepts (so placed, or anchored and also judged) is said as the
  answer, in the user's own words, when the questions agree on their names and numbers;
* when no fact goes to the model, the nearest learnt one, at least ``related_fact_similarity``
  similar and ``related_fact_margin`` clear of the next: shown to the person beside the answer
  ("You taught me ..."), who can tell the same need from a neighbouring one where the model
  and the embedder cannot;
* guidance: the workflows of usable experiences at least ``experience_similarity`` similar;
* a replay plan: the first of those whose script fits the task (its pattern captures the
  slots; or, at ``replay_similarity`` or more, one small model call fills the slots, each
  value copied from the task).

After a run it updates the replayed experience's counters and learns a new experience from
a run that worked (``learn_experiences``; :mod:`agent_core.learning.outcome`). No plan is
replayed for a question with a correction.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent_core.agent import Recall
from agent_core.config import LearningConfig
from agent_core.learning import slots as slotting
from agent_core.learning.experiences import Experience, ExperienceStore, induce
from agent_core.learning.feedback import Confirmation, FeedbackStore
from agent_core.learning.judge import SameNeedJudge
from agent_core.learning.outcome import verified
from agent_core.learning.replay import ExperiencePlan
from agent_core.learning.similarity import QuestionEncoder
from agent_core.prompting import Guidance, Passage, Turn, VerifiedFact, render
from agent_core.traces import Trace
from models.chat import ChatBackend, GenerationSettings
from models.errors import JackdawError
from tools.base import ToolRegistry
from tools.executor import ToolExecutor

log = logging.getLogger("jackdaw.learning")
MAX_FACTS = 5
# An up-rated answer read from files with these tools is recalled while they are unchanged, as
# one read from the notes passages is ("Which blood group am I?" after "What is my blood
# type?", answered by reading health.md); other tools' answers are replayed, with their checks.
READ_TOOLS = ("read_file", "list_folder")


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NOT_NAMES = frozenset({"", "i"})
_MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september"}
    | {"october", "november", "december"}
)
_TERM = re.compile(r"\"[^\"]+\"|\S*\d\S*|\S+[./\\]\S+|(?<!^)(?<![.?!] )\b[A-Z][\w-]*")


def distinctive_terms(text: str) -> set[str]:
    """Names, numbers, quoted text and paths: what makes two similar questions different
    ("the Lisbon office wifi" is not "the Porto office wifi", however close the vectors).
    The pronoun "I" is capitalised but names nothing: "When was the apple tree planted?"
    and "In what year did I plant the apple tree?" ask the same."""
    terms = {t.strip("\"'?.,!:;()").lower() for t in _TERM.findall(text.strip())}
    return terms - _NOT_NAMES


def terms_agree(a: str, b: str) -> bool:
    """Every distinctive term of each question occurs among the words of the other (a
    plural "s" aside: "on Sundays" and "on Sunday" name the same day)."""
    words_a = set(re.findall(r"[\w./\\-]+", a.lower()))
    words_b = set(re.findall(r"[\w./\\-]+", b.lower()))

    def found(term: str, words: set[str], text: str) -> bool:
        forms = {term, term[:-1]} if len(term) > 3 and term.endswith("s") else {term}
        return any(f in words or f in text for f in forms)

    return all(found(t, words_b, b.lower()) for t in distinctive_terms(a)) and all(
        found(t, words_a, a.lower()) for t in distinctive_terms(b)
    )


# Words that name what a question asks for: "On which day are Ellie's piano lessons?" and
# "What time does Ellie's piano lesson start?" are 0.91 similar and agree on their names, yet
# one answer does not do for the other (measured: the day's correction was said as the time).
_ASKED_KINDS = frozenset(
    {"day", "time", "date", "year", "month", "week", "hour", "name", "number", "price"}
    | {"cost", "address", "age", "size", "colour"}
)


def asks_alike(a: str, b: str) -> bool:
    """The two questions do not name different kinds of thing asked for (a day and a time);
    one naming none ("When ...?") goes with any."""

    def kinds(text: str) -> set[str]:
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        return {k for k in _ASKED_KINDS if k in words or k + "s" in words}

    kinds_a, kinds_b = kinds(a), kinds(b)
    return not kinds_a or not kinds_b or bool(kinds_a & kinds_b)


def anchored(answer: str, passage: Passage) -> bool:
    """``passage`` says what ``answer`` says: every distinctive term of the answer (of two
    characters or more) occurs in it; an answer without names or numbers ("Brassicas under
    the net: kale and purple sprouting broccoli.") has 4 in 5 of its content words there."""
    text = passage.text.lower()
    terms = {t for t in distinctive_terms(answer) if len(t) > 1}
    if terms:
        short = set(re.findall(r"[a-z]+", text))  # "7 Feb 2026" says "7 February 2026"
        return all(t in text or (t in _MONTHS and t[:3] in short) for t in terms)
    words = slotting.content_words(answer)
    found = slotting.content_words(passage.text)
    return len(words) >= 2 and len(words & found) >= 0.8 * len(words)


def clear_nearest(
    learnt: Sequence[VerifiedFact], floor: float, margin: float
) -> VerifiedFact | None:
    """The first of ``learnt`` (nearest first), when it is at least ``floor`` similar and
    ``margin`` ahead of the next; else None (two about as near: either may be the one meant)."""
    if not learnt or learnt[0].similarity < floor:
        return None
    runner_up = learnt[1].similarity if len(learnt) > 1 else 0.0
    return learnt[0] if learnt[0].similarity - runner_up >= margin else None


def notes_unchanged(confirmation: Confirmation) -> bool:
    """The files the confirmed answer was read from are still as they were when it was
    asked (a changed note may say something else now: then the model reads it again)."""
    return unchanged_since(map(Path, confirmation.paths), confirmation.asked_at)


def unchanged_since(paths: Iterable[Path], moment: float) -> bool:
    """None of ``paths`` was modified after ``moment`` (a path gone counts as changed)."""
    try:
        return all(p.stat().st_mtime <= moment for p in paths)
    except OSError:
        return False


class SlotFiller(Protocol):
    def fill(
        self, task: str, experience: Experience
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Slot values for ``task`` (None when it cannot) and a record of the model call."""
        ...


class ModelSlotFiller:
    """One small, schema-constrained model call that copies slot values out of a task."""

    def __init__(self, backend: ChatBackend, seed: int = 42, max_tokens: int = 64) -> None:
        self.backend = backend
        self.settings = GenerationSettings(temperature=0.0, seed=seed, max_tokens=max_tokens)

    def fill(
        self, task: str, experience: Experience
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        slots = experience.script.slots
        schema = {
            "type": "object",
            "properties": {s.name: {"type": "string"} for s in slots},
            "required": [s.name for s in slots],
            "additionalProperties": False,
        }
        prompt = render(
            "slots.txt",
            task=experience.task,
            example_json=json.dumps({s.name: s.example for s in slots}, ensure_ascii=False),
            question=task,
        )
        messages = [{"role": "user", "content": prompt}]
        result = self.backend.chat(messages, self.settings, response_schema=schema)
        record = {
            "messages": messages,
            "raw_output": result.text,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "duration_ms": result.duration_ms,
        }
        try:
            values = json.loads(result.text)
        except json.JSONDecodeError:
            return None, record
        if not isinstance(values, dict):
            return None, record
        # A slot holds a value that came from the task: the new value must come from it too.
        lowered = task.lower()
        if any(str(values.get(s.name, "")).strip().lower() not in lowered for s in slots):
            record["refused"] = "a value does not occur in the task"
            return None, record
        # ...and every number of the task has a slot: "17 times 23 plus 4" does not fit the
        # script of "17 times 23" (measured: replayed, it answered 391 for 395).
        given = " ".join(str(v) for v in values.values())
        if any(
            not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", given)
            for n in _NUMBER.findall(task)
        ):
            record["refused"] = "the task holds a number the script has no place for"
            return None, record
        return slotting.typed(values, slots), record


class LearningMemory:
    def __init__(
        self,
        feedback: FeedbackStore,
        experiences: ExperienceStore,
        encoder: QuestionEncoder,
        config: LearningConfig,
        *,
        slot_filler: SlotFiller | None = None,
        judge: SameNeedJudge | None = None,
    ) -> None:
        self.feedback = feedback
        self.experiences = experiences
        self.encoder = encoder
        self.config = config
        self.slot_filler = slot_filler
        self.judge = judge
        self._registry: ToolRegistry | None = None

    # -- before a run ------------------------------------------------------------------------
    def recall(
        self,
        question: str,
        *,
        history: Sequence[Turn],
        executor: ToolExecutor,
        passages: Sequence[Passage] = (),
    ) -> Recall:
        config = self.config
        self._registry = executor.registry  # for learning from this run afterwards
        vector = self.encoder.vector(question)
        # The runner-up counts too: the nearest must stand a margin ahead of it.
        floor = min(
            config.correction_similarity,
            config.related_fact_similarity - config.related_fact_margin,
        )
        if passages:
            floor = min(floor, config.anchored_fact_similarity - config.anchored_fact_margin)
        if self.judge is not None:
            floor = min(floor, config.judged_fact_similarity)
        # A learnt answer to a question asking for another kind of thing (a day, not a time)
        # is no fact for this one: shown last in the prompt, the model said it anyway
        # (measured: "What time does Ellie's piano lesson start?", 0.91 from the corrected
        # "On which day are Ellie's piano lessons?" -> "... starts on Wednesdays").
        learnt = [
            f
            for f in self._learnt_facts(question, vector, floor)
            if asks_alike(question, f.question)
        ]
        calls: list[dict[str, Any]] = []  # model calls made here go on the trace
        facts = [f for f in learnt if f.similarity >= config.correction_similarity][:MAX_FACTS]
        if not facts and passages:
            facts = self._anchored(question, learnt, passages[0], calls)
        if not facts:
            facts = self._judged(question, learnt, calls)
        corrected = any(f.kind == "correction" for f in facts)
        best = facts[0] if facts else None
        if best is not None and self._says_it(question, best):
            return Recall(facts=facts, answer=best, extra=self._calls(calls))
        similar = self.experiences.similar(question, vector, config.experience_similarity)
        # A question whose answer the user corrected is answered from the correction, never
        # by replaying a plan: the plan may be what produced the wrong answer.
        plan = None if corrected else self._plan(question, similar, executor, calls)
        guidance = [Guidance(e.task_template, e.workflow, e.id, round(s, 4)) for e, s in similar]
        if plan is not None:  # the workflow of the script being replayed comes first
            guidance.sort(key=lambda g: g.experience_id != plan.experience.id)
        related = None if facts else self._related(learnt)
        return Recall(
            facts=facts, guidance=guidance, plan=plan, extra=self._calls(calls), related=related
        )

    @staticmethod
    def _calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
        return {"learning_calls": calls} if calls else {}

    def _says_it(self, question: str, best: VerifiedFact) -> bool:
        """``best`` *is* the answer, said without the model: when the two questions agree on
        their names and numbers, and it is at least ``correction_strong_similarity`` similar,
        or it is a correction the judge said answers this question. The user's own words are
        said as they gave them; read by the model, a correction that holds a time and a date
        lost the time ("How fast did I run the most recent Riverside 10k?" -> "on 8 March
        2026", from "52:14, on 8 March 2026."). An up-rated answer the judge placed goes to the
        model: it was the model's own reading (read again, right for 12 of 12 and 13 of 13 in
        two runs of the learning curve), and a correction only anchored in its note is read by
        the model, never said alone (a neighbouring need's is anchored in the same note)."""
        if not terms_agree(question, best.question):
            return False
        if best.judged_by:
            return best.kind == "correction"
        return not best.anchored_in and best.similarity >= self.config.correction_strong_similarity

    def _related(self, learnt: list[VerifiedFact]) -> VerifiedFact | None:
        """The nearest learnt fact, when it stands ``related_fact_margin`` clear of the next and
        is at least ``related_fact_similarity`` similar: for the person to see beside the
        answer. Measured: given to the model, a neighbouring need's fact turned right answers
        wrong ("What is our cat called?" -> "9 years old"); in front of the person it cannot."""
        config = self.config
        return clear_nearest(learnt, config.related_fact_similarity, config.related_fact_margin)

    def _learnt_facts(self, question: str, vector: Any, floor: float) -> list[VerifiedFact]:
        """Active corrections and (unless switched off) confirmed answers at least ``floor``
        similar, best first; a correction first among equals."""
        config = self.config
        facts = [
            VerifiedFact(c.question, c.answer, c.id, c.created_at, round(similarity, 4))
            for c, similarity in self.feedback.lookup(question, vector, floor)
        ]
        if config.recall_confirmed_answers:
            facts += [
                VerifiedFact(
                    c.question, c.answer, c.rating_id, c.created_at, round(s, 4), "confirmed"
                )
                for c, s in self.feedback.confirmations(question, vector, floor, READ_TOOLS)
                if notes_unchanged(c) and self._reads_unchanged(c)
            ]
        return sorted(facts, key=lambda f: -f.similarity)  # stable: corrections first

    def _reads_unchanged(self, confirmation: Confirmation) -> bool:
        """The files and folders the confirmed run read with tools are as they were when it
        was asked (a call that cannot be checked counts as changed)."""
        for name, arguments in confirmation.tool_calls:
            tool = self._registry.get(name) if self._registry is not None else None
            try:
                paths = tool.touched_paths(json.loads(arguments)) if tool is not None else None
            except Exception:  # a path refused now: not the same read
                return False
            if not paths or not unchanged_since(paths, confirmation.asked_at):
                return False
        return True

    def _anchored(
        self,
        question: str,
        learnt: list[VerifiedFact],
        top: Passage,
        calls: list[dict[str, Any]],
    ) -> list[VerifiedFact]:
        """The nearest learnt fact, when it is a correction, stands clear of the next (by
        ``anchored_fact_margin``) and ``top``, the passage ranked first, holds its answer.
        With a judge, it is asked too: a correction it accepts is said as the answer."""
        config = self.config
        best = clear_nearest(learnt, config.anchored_fact_similarity, config.anchored_fact_margin)
        # Only a correction: it says the model misread this note, and will again in other
        # words. An answer rated up was read right; shown to new questions about the same
        # note it hijacked them (measured: 15 of 77 first questions were shown a neighbour's
        # up-rated answer; "What is our flight number to Lisbon?" got the trip's dates).
        if best is None or best.kind != "correction" or not anchored(best.answer, top):
            return []
        best = dataclasses.replace(best, anchored_in=top.source)
        return [self._judge(question, best, calls) or best]

    def _judged(
        self, question: str, learnt: list[VerifiedFact], calls: list[dict[str, Any]]
    ) -> list[VerifiedFact]:
        """The nearest of the ``judged_candidates`` nearest learnt facts (at least
        ``judged_fact_similarity`` similar) that the judge says answers ``question``
        (:mod:`agent_core.learning.judge`: similarity alone cannot tell the same need in other
        words from a neighbouring one down there)."""
        near = [f for f in learnt if f.similarity >= self.config.judged_fact_similarity]
        for fact in near[: self.config.judged_candidates]:
            accepted = self._judge(question, fact, calls)
            if accepted is not None:
                return [accepted]
        return []

    def _judge(
        self, question: str, fact: VerifiedFact, calls: list[dict[str, Any]]
    ) -> VerifiedFact | None:
        """``fact``, marked judged, when the judge says it answers ``question``; else None
        (also with no judge, or one whose model failed: it is off for the session then)."""
        if self.judge is None:
            return None
        try:
            same, record = self.judge.same_need(question, fact)
        except JackdawError as exc:  # no judge today (its model is gone): answer anyway
            log.warning("the learning judge is off for this session: %s", exc)
            self.judge = None
            return None
        calls.append(record)
        return dataclasses.replace(fact, judged_by=str(record.get("model", ""))) if same else None

    def _plan(
        self,
        question: str,
        similar: list[tuple[Experience, float]],
        executor: ToolExecutor,
        calls: list[dict[str, Any]],
    ) -> ExperiencePlan | None:
        for experience, similarity in similar:
            script = experience.script
            if not script.steps:
                continue
            values = slotting.match(script.pattern, question, script.slots)
            if values is not None:
                how = "pattern" if script.slots else "same_task"
                return ExperiencePlan(
                    experience, values, executor, matched_by=how, similarity=similarity
                )
            if (
                self.slot_filler is not None
                and self.config.replay_fill_slots_with_model
                and script.slots
                and similarity >= self.config.replay_similarity
            ):
                values, record = self.slot_filler.fill(question, experience)
                calls.append({"purpose": "fill slots", "experience_id": experience.id, **record})
                if values is None:
                    continue
                return ExperiencePlan(
                    experience, values, executor, matched_by="model", similarity=similarity
                )
        return None

    # -- after a run -------------------------------------------------------------------------
    def after_run(self, trace: Trace, recall: Recall) -> None:
        replay = trace.extra.get("replay")
        if recall.plan is not None and replay and trace.status != "cancelled":
            completed = replay.get("fell_back") is None and len(
                replay.get("replayed_steps", [])
            ) == replay.get("script_steps")
            success = completed and verified(trace)
            self.experiences.record_use(replay["experience_id"], success)
            if success:
                return  # the same script did it again: nothing new to learn
        if self.config.learn_experiences and trace.status == "ok" and self._registry is not None:
            self.learn_from(trace, self._registry)

    def learn_from(
        self, trace: Trace, registry: ToolRegistry, *, rated_up: bool = False
    ) -> Experience | None:
        """Induce an experience from ``trace`` and store it (or merge it into its twin):
        from a run the user rated up, or one that verifies by itself (``outcome``)."""
        experience = induce(trace, registry, rated_up=rated_up)
        if experience is None:
            return None
        stored, _ = self.experiences.add(
            experience, dedup_similarity=self.config.experience_dedup_similarity
        )
        return stored
