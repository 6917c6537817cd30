"""``jackdaw rate | correct | corrections | experiences | lessons | replay | refine | prompts |
export | forget``: the learning loop from the command line.

Every command goes through :class:`agent_core.learning.Learning` (``services.learning``
once the composition root has it). ``--json`` prints exactly one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from agent_core.cli_output import print_json
from agent_core.learning import Learning
from agent_core.learning.forget import KINDS
from agent_core.learning.replay import LIVE, MODEL, RECORD
from models.errors import JackdawError

Handler = Callable[[argparse.Namespace, Any], int]


class UsageError(JackdawError):
    hint = "See `jackdaw COMMAND --help`."


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def _one_line(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def with_learning(fn: Callable[[argparse.Namespace, Learning], int]) -> Handler:
    @functools.wraps(fn)
    def handler(args: argparse.Namespace, services: Any) -> int:
        return fn(args, services.learning)

    return handler


# -- feedback ---------------------------------------------------------------------------------
@with_learning
def cmd_rate(args: argparse.Namespace, learning: Learning) -> int:
    if args.value not in ("up", "down"):
        raise UsageError(f"Rate a run up or down, not {args.value!r}.")
    rating = learning.rate(args.trace, args.value == "up", args.comment or "")
    if args.json:
        print_json({"rating": rating.to_dict()})
    else:
        _out(f"Rated run {rating.trace_id} {args.value} (rating {rating.id}).")
    return 0


@with_learning
def cmd_correct(args: argparse.Namespace, learning: Learning) -> int:
    correction = learning.correct(args.trace, args.answer, args.note or "")
    if args.json:
        print_json({"correction": correction.to_dict()})
    else:
        _out(
            f"Correction {correction.id} saved for run {correction.trace_id}; "
            "similar questions get it from now on."
        )
    return 0


@with_learning
def cmd_corrections_list(args: argparse.Namespace, learning: Learning) -> int:
    corrections = learning.corrections(history=args.all)
    if args.json:
        print_json({"corrections": [c.to_dict() for c in corrections]})
        return 0
    for c in corrections:
        state = "" if c.active else f"  (superseded by {c.superseded_by})"
        _out(
            f"{c.id:>4}  {_when(c.created_at)}  {_one_line(c.question, 40)}  ->  "
            f"{_one_line(c.answer, 40)}{state}"
        )
    if not corrections:
        sys.stderr.write('No corrections yet: jackdaw correct TRACE "ANSWER"\n')
    return 0


# -- experiences, lessons -----------------------------------------------------------------------
@with_learning
def cmd_experiences_list(args: argparse.Namespace, learning: Learning) -> int:
    experiences = learning.experience_list()
    if args.json:
        print_json({"experiences": [e.to_dict() for e in experiences]})
        return 0
    for e in experiences:
        _out(
            f"{e.id}  {e.status:<8} +{e.successes}/-{e.failures} used {e.uses}x  "
            f"{len(e.script.steps)} step(s)  {_one_line(e.task_template, 50)}"
        )
    if not experiences:
        sys.stderr.write("No experiences yet: they are learnt from runs that used tools well.\n")
    return 0


@with_learning
def cmd_experiences_show(args: argparse.Namespace, learning: Learning) -> int:
    e = learning.experience(args.id)
    if args.json:
        print_json(e.to_dict())
        return 0
    _out(
        f"experience {e.id}  {e.status}  successes {e.successes}  failures {e.failures}  "
        f"uses {e.uses}  last used {_when(e.last_used_at)}"
    )
    _out(f"task: {e.task_template}")
    _out(f"from runs: {', '.join(e.sources)}")
    if e.script.slots:
        _out(
            "slots: "
            + ", ".join(f"{s.name} ({s.type}, e.g. {s.example!r})" for s in e.script.slots)
        )
    _out("workflow:\n" + "\n".join("  " + line for line in e.workflow.splitlines()))
    for i, step in enumerate(e.script.steps, 1):
        _out(f"step {i}: {step.tool} {json.dumps(step.arguments, ensure_ascii=False)}")
        _out("  before: " + ", ".join(c.describe() for c in step.pre))
        _out("  after:  " + ", ".join(c.describe() for c in step.post))
    return 0


@with_learning
def cmd_lessons_list(args: argparse.Namespace, learning: Learning) -> int:
    lessons = learning.lesson_list()
    if args.json:
        print_json({"lessons": [x.to_dict() for x in lessons]})
        return 0
    for x in lessons:
        _out(f"{x.id:>4}  {x.status:<9} +{x.helpful}/-{x.harmful}  {x.text}")
    if not lessons:
        sys.stderr.write("No lessons yet: `jackdaw refine` distils them from corrections.\n")
    return 0


# -- replay, refine -----------------------------------------------------------------------------
@with_learning
def cmd_replay(args: argparse.Namespace, learning: Learning) -> int:
    mode = RECORD if args.from_record else MODEL if args.model else LIVE
    report = learning.replay(args.trace, mode=mode, allow_side_effects=args.allow_side_effects)
    if args.json:
        print_json(report.to_dict())
        return 0
    _out(f"replay of run {report.trace_id} ({report.mode})")
    for s in report.steps:
        tool = f" {s.tool}" if s.tool else ""
        _out(f"  step {s.idx} {s.kind}{tool}: {s.status}  {s.detail}")
        if s.status == "diverged" and (s.expected or s.actual):
            _out(f"      recorded: {_one_line(s.expected, 90)}")
            _out(f"      now:      {_one_line(s.actual, 90)}")
    first = report.first_divergence
    _out("every step matches" if first is None else f"first divergence at step {first}")
    return 0


@with_learning
def cmd_refine(args: argparse.Namespace, learning: Learning) -> int:
    sys.stderr.write("Refining: scoring the current and a candidate prompt on your rated runs...\n")
    result = learning.refine()
    if args.json:
        print_json(result.to_dict())
        return 0
    _out(f"refinement {result.run_id}: {result.status} — {result.reason}")
    if result.current_score is not None:
        _out(f"  current   {result.current_id}  score {result.current_score:.3f}")
        _out(f"  candidate {result.candidate_id}  score {result.candidate_score:.3f}")
    _out(f"  {result.cases} case(s), {result.duration_s:.1f} s")
    return 0


# -- prompt versions ----------------------------------------------------------------------------
@with_learning
def cmd_prompts_list(args: argparse.Namespace, learning: Learning) -> int:
    versions = learning.prompt_versions()
    active = learning.versions.active().id
    if args.json:
        print_json({"active": active, "versions": [v.to_dict() for v in versions]})
        return 0
    for v in versions:
        mark = "*" if v.id == active else " "
        score = f"{v.score:.3f}" if v.score is not None else "  -  "
        _out(
            f"{mark} {v.id}  {v.status:<9} score {score}  {_when(v.created_at)}  "
            f"{len(v.lessons)} lesson(s), {len(v.exemplars)} exemplar(s)  {_one_line(v.reason, 50)}"
        )
    return 0


@with_learning
def cmd_prompts_show(args: argparse.Namespace, learning: Learning) -> int:
    v = learning.prompt_version(args.id)
    if args.json:
        print_json(v.to_dict())
        return 0
    _out(f"prompt version {v.id}  {v.status}  score {v.score}  ({v.reason})")
    _out("--- system text ---\n" + v.system_text)
    if v.lessons:
        _out("--- lessons ---\n" + "\n".join(f"- {x['text']}" for x in v.lessons))
    return 0


@with_learning
def cmd_prompts_rollback(args: argparse.Namespace, learning: Learning) -> int:
    v = learning.rollback(args.id)
    if args.json:
        print_json({"active": v.id})
    else:
        _out(f"Prompt version {v.id} is in force again.")
    return 0


# -- export, forget -----------------------------------------------------------------------------
@with_learning
def cmd_export(args: argparse.Namespace, learning: Learning) -> int:
    done = learning.export(args.path, args.format)
    if args.json:
        print_json(done)
    else:
        _out(f"Wrote {done['rows']} {done['format']} row(s) to {done['path']}.")
    return 0


@with_learning
def cmd_forget(args: argparse.Namespace, learning: Learning) -> int:
    report = learning.forget(args.kind, args.id)
    if args.json:
        print_json(report.to_dict())
        return 0
    gone = ", ".join(f"{len(ids)} {what}" for what, ids in report.deleted.items()) or "nothing"
    _out(f"Forgot {args.kind} {report.id}: deleted {gone}.")
    if report.active_prompt_after != report.active_prompt_before:
        _out(f"The prompt version in force is now {report.active_prompt_after}.")
    return 0


# -- parser -------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    def leaf(parent: Any, name: str, help: str, handler: Handler) -> Any:
        parser = parent.add_parser(name, help=help)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(handler=handler)
        return parser

    def group(name: str, help: str) -> Any:
        return subparsers.add_parser(name, help=help).add_subparsers(
            dest=f"{name}_command", metavar="ACTION", required=True
        )

    rate = leaf(subparsers, "rate", "rate a run's answer up or down", cmd_rate)
    rate.add_argument("trace", help="the run's id (or a unique prefix)")
    rate.add_argument("value", choices=["up", "down"])
    rate.add_argument("--comment", metavar="TEXT")

    correct = leaf(subparsers, "correct", "give the right answer to a run's question", cmd_correct)
    correct.add_argument("trace")
    correct.add_argument("answer")
    correct.add_argument("--note", metavar="TEXT")

    corrections = group("corrections", "your corrections")
    listing = leaf(
        corrections, "list", "corrections in force (--all: with history)", cmd_corrections_list
    )
    listing.add_argument("--all", action="store_true", help="include superseded ones")

    experiences = group("experiences", "scripts and workflows learnt from runs")
    leaf(experiences, "list", "all experiences", cmd_experiences_list)
    show = leaf(
        experiences, "show", "one experience: script, checks, workflow", cmd_experiences_show
    )
    show.add_argument("id")

    lessons = group("lessons", "guidelines distilled from corrections")
    leaf(lessons, "list", "all lessons with their counters", cmd_lessons_list)

    replay = leaf(subparsers, "replay", "replay a run and report the first divergence", cmd_replay)
    replay.add_argument("trace")
    how = replay.add_mutually_exclusive_group()
    how.add_argument("--from-record", action="store_true", help="run nothing; check the record")
    how.add_argument("--model", action="store_true", help="ask the model again at each step")
    replay.add_argument(
        "--allow-side-effects", action="store_true", help="run write tools again too (they ask)"
    )

    leaf(subparsers, "refine", "build, score and maybe adopt a better prompt version", cmd_refine)

    prompts = group("prompts", "prompt versions")
    leaf(prompts, "list", "every version, with scores (* = in force)", cmd_prompts_list)
    leaf(prompts, "show", "one version's text and lessons", cmd_prompts_show).add_argument("id")
    leaf(
        prompts, "rollback", "put an earlier version back in force", cmd_prompts_rollback
    ).add_argument("id")

    export = leaf(subparsers, "export", "export good runs and corrections as JSONL", cmd_export)
    export.add_argument("path")
    export.add_argument("--format", choices=["sft", "preference"], required=True)

    forget = leaf(
        subparsers, "forget", "delete something and what was learnt only from it", cmd_forget
    )
    forget.add_argument("kind", choices=list(KINDS))
    forget.add_argument("id")
