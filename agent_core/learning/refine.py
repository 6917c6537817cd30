"""Offline refinement: build a candidate prompt version, score it and the version in force
on the replay set, and adopt the candidate only if it scores at least as well overall and
regresses on no pinned correction. Every version is kept with its scores and the reason.

Crash safety: the only writes that change what is in force happen in one final transaction
(scores, statuses, the activation, the run's outcome). A crash before it leaves the current
version in force; the run row is left ``running`` and the candidate ``candidate``, and
:meth:`Refiner.recover` (run before every refinement, and at start-up) marks runs whose
heartbeat stopped ``interrupted`` and their candidates ``abandoned`` (a run in another
process, still beating, is left alone). Scoring runs go to an in-memory DB, never to
memory.db.

Scheduling: :class:`RefinementScheduler` checks every few minutes (apscheduler) whether the
app has been idle for ``refine_idle_minutes`` and fewer than ``refine_max_per_day`` runs
started in the last day; activity of the user cancels a refinement in progress.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.config import LearningConfig
from agent_core.learning.errors import RefinementBusyError
from agent_core.learning.evaluation import (
    CORRECTION,
    GUARD,
    UPRATED,
    Evaluator,
    ReplayCase,
    VersionScore,
    build_replay_set,
)
from agent_core.learning.feedback import FeedbackStore
from agent_core.learning.lessons import (
    ACTIVE,
    CANDIDATE,
    LessonDistiller,
    LessonInput,
    LessonStore,
    unsafe_reason,
)
from agent_core.learning.versions import (
    ABANDONED,
    ADOPTED,
    REJECTED,
    Exemplar,
    PromptVersion,
    PromptVersionStore,
    compose,
)
from agent_core.memory_db import transaction
from agent_core.traces import TraceNotFoundError, TraceStore

log = logging.getLogger("jackdaw.learning")
GUARD_CASES = 8  # other questions kept from getting a corrected answer (evaluation.guard_cases)
STALE_AFTER_S = 600.0  # a running refinement beats after every case; silence means a crash


@dataclass
class Decision:
    adopt: bool
    reason: str
    regressions: list[str] = field(default_factory=list)


def gate(current: VersionScore, candidate: VersionScore, cases: list[ReplayCase]) -> Decision:
    """Adopt only if the candidate scores at least as well overall and every pinned case the
    current version passes, the candidate passes too."""
    regressions = [
        c.id for c in cases if c.pinned and current.passed(c.id) and not candidate.passed(c.id)
    ]
    if regressions:
        kinds = {c.id: c.kind for c in cases}
        corrections = [r for r in regressions if kinds[r] != GUARD]
        guards = [r for r in regressions if kinds[r] == GUARD]
        why = []
        if corrections:
            why.append(f"regresses on pinned correction(s): {', '.join(corrections)}")
        if guards:
            why.append(f"gives a corrected answer to another question: {', '.join(guards)}")
        return Decision(False, "; ".join(why), regressions)
    if candidate.overall < current.overall:
        return Decision(
            False, f"scores {candidate.overall:.3f}, below the current {current.overall:.3f}"
        )
    return Decision(
        True,
        f"scores {candidate.overall:.3f} >= {current.overall:.3f}, no pinned regression",
    )


@dataclass
class RefinementResult:
    run_id: int
    status: str  # adopted | rejected | unchanged | skipped | cancelled | failed
    reason: str
    current_id: str
    candidate_id: str | None = None
    current_score: float | None = None
    candidate_score: float | None = None
    regressions: list[str] = field(default_factory=list)
    cases: int = 0
    duration_s: float = 0.0
    lessons: list[dict[str, Any]] = field(default_factory=list)  # what distillation did
    report: dict[str, Any] = field(default_factory=dict)  # per-case results of both

    @property
    def adopted(self) -> bool:
        return self.status == ADOPTED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adopted": self.adopted}


class Refiner:
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        traces: TraceStore,
        feedback: FeedbackStore,
        lessons: LessonStore,
        versions: PromptVersionStore,
        evaluator: Callable[[], Evaluator],
        config: LearningConfig,
        count_tokens: Callable[[str], int],
        distiller: Callable[[], LessonDistiller | None] | None = None,
    ) -> None:
        self.conn = conn
        self.traces = traces
        self.feedback = feedback
        self.lessons = lessons
        self.versions = versions
        self.evaluator = evaluator
        self.config = config
        self.count_tokens = count_tokens
        self.distiller = distiller
        self._lock = threading.Lock()
        try:  # stale states are healed at start: a run whose process is gone is interrupted
            self.recover()
        except Exception:  # a busy or read-only memory.db must not stop the app
            log.warning("could not check for interrupted refinements", exc_info=True)

    # -- bookkeeping ---------------------------------------------------------------------------
    def recover(self, stale_after_s: float = STALE_AFTER_S) -> int:
        """Close runs a crash left ``running`` and abandon their candidates; returns how many
        runs it closed. A run is stale when the process that started it is gone (its pid is
        recorded with the run), or, for a run without one, when it has not beaten for
        ``stale_after_s``. A run of a living process is left alone."""
        now = time.time()
        with transaction(self.conn):
            rows = self.conn.execute(
                "SELECT id, candidate_id, started_at, heartbeat_at, report_json "
                "FROM refinement_runs WHERE status = 'running'"
            ).fetchall()
            stale = [row for row in rows if _run_is_stale(row, now, stale_after_s)]
            for row in stale:
                self.conn.execute(
                    "UPDATE refinement_runs SET status = 'interrupted', finished_at = ?, "
                    "reason = 'the app stopped during the refinement' WHERE id = ?",
                    (now, row["id"]),
                )
            self.conn.execute(
                "UPDATE prompt_versions SET status = ?, reason = 'refinement interrupted' "
                "WHERE status = 'candidate' AND id NOT IN (SELECT candidate_id FROM "
                "refinement_runs WHERE status = 'running' AND candidate_id IS NOT NULL)",
                (ABANDONED,),
            )
        return len(stale)

    def _beat(self, run_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE refinement_runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id)
            )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM refinement_runs ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [{**dict(r), "report_json": None} for r in rows]

    def last_run_started(self, statuses: tuple[str, ...] | None = None) -> float | None:
        sql = "SELECT MAX(started_at) FROM refinement_runs"
        params: tuple[Any, ...] = ()
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            params = statuses
        return self.conn.execute(sql, params).fetchone()[0]

    def counted_starts_since(self, since: float) -> list[float]:
        """Start times (oldest first) of the runs that count against the daily limit."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT started_at FROM refinement_runs WHERE started_at >= ? "
                "AND status NOT IN ('cancelled', 'skipped') ORDER BY started_at",
                (since,),
            )
        ]

    def runs_since(self, since: float) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM refinement_runs WHERE started_at >= ? "
            "AND status NOT IN ('cancelled', 'skipped')",
            (since,),
        ).fetchone()[0]

    # -- lessons -------------------------------------------------------------------------------
    def lesson_inputs(self) -> list[LessonInput]:
        """Corrections and down-ratings the distiller has not seen yet."""
        items: list[LessonInput] = []
        for correction in self.feedback.corrections():
            items.append(
                LessonInput(
                    f"correction:{correction.id}",
                    correction.trace_id,
                    correction.question,
                    correction.original_answer or "",
                    corrected=correction.answer,
                    comment=correction.note,
                )
            )
        for rating in self.feedback.ratings(history=False):
            if rating.up:
                continue
            try:
                trace = self.traces.get(rating.trace_id)
            except TraceNotFoundError:
                continue
            items.append(
                LessonInput(
                    f"rating:{rating.id}",
                    trace.id,
                    trace.question,
                    trace.final_answer or "",
                    comment=rating.comment,
                )
            )
        return [x for x in items if not self.lessons.processed(x.source)]

    def distill(
        self,
        cancel: threading.Event | None = None,
        on_input: Callable[[], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Ask the model for lesson deltas on each new correction and down-rating."""
        distiller = self.distiller() if self.distiller is not None else None
        if distiller is None:
            return []
        applied: list[dict[str, Any]] = []
        for item in self.lesson_inputs():
            if cancel is not None and cancel.is_set():
                break
            deltas = distiller.propose(item, self.lessons.all())
            results = self.lessons.apply(deltas)
            self.lessons.mark_processed(item.source)
            applied += [r.to_dict() for r in results]
            if on_input is not None:
                on_input()
        self.lessons.merge_near_duplicates()
        return applied

    # -- the candidate -------------------------------------------------------------------------
    def build_candidate(self, current: PromptVersion, cases: list[ReplayCase]) -> PromptVersion:
        config = self.config
        chosen = self.lessons.ranked(ACTIVE, config.lessons_dose)
        chosen += self.lessons.ranked(CANDIDATE, config.lessons_on_trial)
        lessons = [{"id": x.id, "text": x.text} for x in chosen if unsafe_reason(x.text) is None]
        return compose(
            self.versions.base_text,
            lessons,
            self.select_exemplars(current, cases),
            parent_id=current.id,
        )

    def select_exemplars(self, current: PromptVersion, cases: list[ReplayCase]) -> list[Exemplar]:
        """Corrections first (the current version's still-valid ones before new ones, so the
        prompt changes little from version to version), then up-rated answers without tools;
        at most ``exemplars_max`` within ``exemplars_budget_tokens``."""
        pool: list[Exemplar] = []
        for case in cases:
            if case.kind == CORRECTION:
                pool.append(Exemplar(case.question, case.expected, case.id, case.trace_id))
        for case in cases:
            if case.kind == UPRATED and not case.tools and not case.history:
                pool.append(
                    Exemplar(case.question, case.expected, f"trace:{case.trace_id}", case.trace_id)
                )
        valid = {e.source for e in pool}
        kept_before = [e for e in current.exemplars if e.source in valid]
        ordered = kept_before + [e for e in pool if e.source not in {k.source for k in kept_before}]
        chosen: list[Exemplar] = []
        used = 0
        for exemplar in ordered:
            cost = self.count_tokens(exemplar.question) + self.count_tokens(exemplar.answer) + 6
            if (
                len(chosen) >= self.config.exemplars_max
                or used + cost > self.config.exemplars_budget_tokens
            ):
                continue
            chosen.append(exemplar)
            used += cost
        return chosen

    # -- a refinement --------------------------------------------------------------------------
    def refine(
        self,
        *,
        cancel: threading.Event | None = None,
        candidate: PromptVersion | None = None,
        distill: bool = True,
    ) -> RefinementResult:
        """One refinement. ``candidate`` scores a given version instead of building one."""
        if not self._lock.acquire(blocking=False):
            raise RefinementBusyError("A refinement is already running.")
        try:
            return self._refine(cancel, candidate, distill)
        finally:
            self._lock.release()

    def _refine(
        self,
        cancel: threading.Event | None,
        given: PromptVersion | None,
        distill: bool,
    ) -> RefinementResult:
        started = time.perf_counter()
        self.recover()
        current = self.versions.active()
        with transaction(self.conn):
            run_id = int(
                self.conn.execute(
                    "INSERT INTO refinement_runs (started_at, status, current_id, report_json) "
                    "VALUES (?, 'running', ?, ?)",
                    # Who runs it, so a run whose process died is seen at once (recover).
                    (time.time(), current.id, json.dumps({"pid": os.getpid()})),
                ).lastrowid
                or 0
            )
        result = RefinementResult(run_id, "running", "", current.id)
        candidate: PromptVersion | None = None
        try:
            if distill and given is None:
                result.lessons = self.distill(cancel, on_input=lambda: self._beat(run_id))
            cases = build_replay_set(
                self.traces,
                self.feedback,
                guards=GUARD_CASES,
                same_need=self.config.correction_similarity,
            )
            result.cases = len(cases)
            candidate = given or self.build_candidate(current, cases)
            result.candidate_id = candidate.id
            if not cases:
                return self._finish(
                    result, "skipped", "no rated or corrected runs to score", started
                )
            if candidate.id == current.id:
                return self._finish(
                    result, "unchanged", "the candidate is the version in force", started
                )
            candidate.status = "candidate"
            with transaction(self.conn):
                self.versions.save(candidate)
                self.conn.execute(
                    "UPDATE refinement_runs SET candidate_id = ? WHERE id = ?",
                    (candidate.id, run_id),
                )
            evaluator = self.evaluator()

            def beat(_: Any) -> None:
                self._beat(run_id)

            current_score = evaluator.score(current, cases, cancel=cancel, on_case=beat)
            candidate_score = evaluator.score(candidate, cases, cancel=cancel, on_case=beat)
            if cancel is not None and cancel.is_set():
                candidate.status, candidate.reason = ABANDONED, "refinement cancelled"
                with transaction(self.conn):
                    self.versions.save(candidate)
                return self._finish(result, "cancelled", "cancelled (the user came back)", started)
            decision = gate(current_score, candidate_score, cases)
            result.current_score = round(current_score.overall, 4)
            result.candidate_score = round(candidate_score.overall, 4)
            result.regressions = decision.regressions
            result.report = {
                "current": current_score.to_dict(),
                "candidate": candidate_score.to_dict(),
            }
            self._decide(
                result, current, candidate, current_score, candidate_score, decision, started
            )
            trial = [x["id"] for x in candidate.lessons]
            if trial and given is None:
                helped = None
                if decision.adopt:
                    helped = self._lessons_helped(
                        evaluator, candidate, candidate_score, cases, cancel, beat
                    )
                    result.report["lessons_helped"] = helped
                result.report["lessons_retired"] = self.lessons.record_trial(
                    trial, decision.adopt, f"refinement:{run_id}", helped=helped
                )
            return result
        except BaseException as exc:
            self._fail(result, candidate, exc, started)
            raise

    def _lessons_helped(
        self,
        evaluator: Evaluator,
        candidate: PromptVersion,
        candidate_score: VersionScore,
        cases: list[ReplayCase],
        cancel: threading.Event | None,
        beat: Callable[[Any], None],
    ) -> bool | None:
        """Did the candidate's lessons help on the replay set? It is scored again without
        them (same exemplars): they helped only if it scores better with them. None when
        cancelled."""
        without = compose(
            self.versions.base_text, [], list(candidate.exemplars), parent_id=candidate.parent_id
        )
        score = evaluator.score(without, cases, cancel=cancel, on_case=beat)
        if cancel is not None and cancel.is_set():
            return None
        return candidate_score.overall > score.overall

    def _decide(
        self,
        result: RefinementResult,
        current: PromptVersion,
        candidate: PromptVersion,
        current_score: VersionScore,
        candidate_score: VersionScore,
        decision: Decision,
        started: float,
    ) -> None:
        """The one transaction that may change the version in force."""
        candidate.status = ADOPTED if decision.adopt else REJECTED
        candidate.score = result.candidate_score
        candidate.reason = decision.reason
        candidate.scores = {
            "run": result.run_id,
            "cases": result.cases,
            "against": current.id,
            "against_score": result.current_score,
            "passed": [r.case_id for r in candidate_score.results if r.passed],
        }
        result.status = candidate.status
        result.reason = decision.reason
        result.duration_s = round(time.perf_counter() - started, 2)
        current_scores = {
            "run": result.run_id,
            "cases": result.cases,
            "passed": [r.case_id for r in current_score.results if r.passed],
        }
        with transaction(self.conn):
            self.versions.save(candidate)
            # The version in force keeps its latest score, measured on the same cases.
            self.conn.execute(
                "UPDATE prompt_versions SET score = ?, scores_json = ? WHERE id = ?",
                (result.current_score, json.dumps(current_scores), current.id),
            )
            if decision.adopt:
                self.versions.activate(candidate.id, f"refinement {result.run_id}")
            self._close_run(result)

    def _finish(
        self, result: RefinementResult, status: str, reason: str, started: float
    ) -> RefinementResult:
        result.status, result.reason = status, reason
        result.duration_s = round(time.perf_counter() - started, 2)
        with transaction(self.conn):
            self._close_run(result)
        return result

    def _fail(
        self,
        result: RefinementResult,
        candidate: PromptVersion | None,
        exc: BaseException,
        started: float,
    ) -> None:
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
        result.duration_s = round(time.perf_counter() - started, 2)
        try:
            with transaction(self.conn):
                if candidate is not None:
                    self.conn.execute(
                        "UPDATE prompt_versions SET status = ?, reason = ? "
                        "WHERE id = ? AND status = 'candidate'",
                        (ABANDONED, result.reason, candidate.id),
                    )
                self._close_run(result)
        except sqlite3.Error:
            log.exception("could not record the failed refinement (recover() will)")

    def _close_run(self, result: RefinementResult) -> None:
        self.conn.execute(
            "UPDATE refinement_runs SET finished_at = ?, status = ?, candidate_id = ?, "
            "current_score = ?, candidate_score = ?, reason = ?, report_json = ? WHERE id = ?",
            (
                time.time(),
                result.status,
                result.candidate_id,
                result.current_score,
                result.candidate_score,
                result.reason,
                json.dumps(result.to_dict(), default=str),
                result.run_id,
            ),
        )


class RefinementScheduler:
    """Runs a refinement when the app has been idle long enough, at most N times a day.

    ``last_activity`` gives the time of the user's last action (the newest run by default);
    :meth:`note_activity` (the GUI calls it on input) also cancels a refinement in progress.
    :meth:`tick` is what the apscheduler job runs; tests call it directly with a fake clock.
    """

    JOB_ID = "jackdaw-refine"

    def __init__(
        self,
        refiner: Refiner,
        config: LearningConfig,
        *,
        last_activity: Callable[[], float | None],
        clock: Callable[[], float] = time.time,
        check_every_s: float = 300.0,
    ) -> None:
        self.refiner = refiner
        self.config = config
        self.last_activity = last_activity
        self.clock = clock
        self.check_every_s = check_every_s
        self._noted: float | None = None
        self._cancel: threading.Event | None = None
        self.scheduler: Any = None

    def note_activity(self) -> None:
        self._noted = self.clock()
        if self._cancel is not None:
            self._cancel.set()

    def why_not(self) -> str | None:
        """Why a refinement is not due now; None when it is."""
        now = self.clock()
        times = [t for t in (self.last_activity(), self._noted) if t is not None]
        idle_s = self.config.refine_idle_minutes * 60
        if times and now - max(times) < idle_s:
            return f"active {now - max(times):.0f} s ago (waits for {idle_s:.0f} s idle)"
        if self.config.refine_max_per_day <= 0:
            return "scheduled refinement is off ([learning] refine_max_per_day = 0)"
        if self.refiner.runs_since(now - 86400) >= self.config.refine_max_per_day:
            return f"already ran {self.config.refine_max_per_day} time(s) in the last day"
        return None

    def next_run_at(self) -> float | None:
        """When the next refinement is due if the user stays away (now or later; the job
        checks every ``check_every_s``), or None when scheduled refinement is off."""
        if self.config.refine_max_per_day <= 0:
            return None
        now = self.clock()
        due = now
        times = [t for t in (self.last_activity(), self._noted) if t is not None]
        if times:
            due = max(due, max(times) + self.config.refine_idle_minutes * 60)
        day = self.refiner.counted_starts_since(now - 86400)
        if len(day) >= self.config.refine_max_per_day:
            # The oldest counted run of the last day must leave the window first.
            due = max(due, day[len(day) - self.config.refine_max_per_day] + 86400)
        return due

    def status(self) -> dict[str, Any]:
        """What the Learning panel shows: whether the job runs, when the next refinement is
        due, why not now, and the last run with its outcome."""
        runs = self.refiner.runs(limit=1)
        return {
            "scheduled": self.scheduler is not None and bool(getattr(self.scheduler, "running", 0)),
            "running": self._cancel is not None,
            "next_run_at": self.next_run_at(),
            "why_not": self.why_not(),
            "idle_minutes": self.config.refine_idle_minutes,
            "max_per_day": self.config.refine_max_per_day,
            "last_run": runs[0] if runs else None,
        }

    def tick(self) -> RefinementResult | None:
        if self.why_not() is not None:
            return None
        self._cancel = threading.Event()
        try:
            return self.refiner.refine(cancel=self._cancel)
        except Exception:
            log.exception("scheduled refinement failed; the current prompt version stays")
            return None
        finally:
            self._cancel = None

    def start(self, scheduler: Any = None) -> Any:
        """Add the job to ``scheduler`` (a new BackgroundScheduler by default) and start it."""
        if scheduler is None:
            from apscheduler.schedulers.background import BackgroundScheduler

            scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.check_every_s,
            id=self.JOB_ID,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        if not scheduler.running:
            scheduler.start()
        self.scheduler = scheduler
        return scheduler

    def shutdown(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _run_is_stale(row: Any, now: float, stale_after_s: float) -> bool:
    try:
        pid = json.loads(row["report_json"] or "{}").get("pid")
    except (ValueError, AttributeError):
        pid = None
    if isinstance(pid, int):
        return not _pid_alive(pid)
    beat = row["heartbeat_at"] or row["started_at"]
    return bool(beat <= now - stale_after_s)
