"""``jackdaw``: the command line. Every command talks to :class:`Services` only.

``--json`` prints exactly one JSON object on stdout; progress and errors go to stderr; a
user error exits non-zero with a message that says what to do, never a bare traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_core import __version__
from agent_core.agent import AgentEvent
from agent_core.cli_output import (
    disk_full_message,
    for_terminal,
    is_disk_full,
    print_json,
    write_out,
)
from agent_core.progress import related_fact_line, step_line
from agent_core.services import Services
from agent_core.traces import Trace
from models.discovery import recorded_model_label
from models.errors import JackdawError
from models.redact import redact_text
from tools.terminal import TerminalConfirmationHandler

Handler = Callable[[argparse.Namespace, Services], int]
# Command groups that live in modules of their own; each has register(subparsers).
COMMAND_MODULES = (
    "agent_core.cli_knowledge",
    "agent_core.cli_tools",
    "agent_core.cli_learning",
    "agent_core.cli_gui",
)


def trace_result(trace: Trace) -> dict[str, Any]:
    last = trace.steps[-1] if trace.steps else None
    generating_ms = (last.duration_ms - last.first_token_ms) if last else 0.0
    return {
        "answer": trace.final_answer,
        "status": trace.status,
        "model_calls": trace.extra.get("model_calls", 0),
        "trace_id": trace.id,
        "conversation_id": trace.conversation_id,
        "steps": len(trace.steps),
        "tool_calls": [
            {
                "tool": s.tool_name,
                "arguments": s.tool_args,
                "status": (s.tool_outcome or {}).get("status"),
            }
            for s in trace.steps
            if s.tool_name
        ],
        "prompt_tokens": trace.prompt_tokens,
        "completion_tokens": trace.completion_tokens,
        "tokens_per_second": round(last.completion_tokens / (generating_ms / 1000), 1)
        if last and generating_ms > 0
        else None,
        "duration_ms": round(trace.duration_ms, 1),
        "model": recorded_model_label(trace.model),  # a human name, not general.name
        "model_path": trace.model.get("path"),
        "sources": trace.extra.get("sources", []),
        "replayed_from": trace.extra.get("replayed_from"),
        "related_fact": trace.extra.get("related_fact"),
    }


def run_interruptibly(work: Callable[[threading.Event], Trace]) -> Trace:
    """Run ``work`` in a thread; Ctrl-C cancels it (between tokens) instead of killing us."""
    cancel = threading.Event()
    finished = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["trace"] = work(cancel)
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc
        finally:
            finished.set()

    # Wait on an Event, not Thread.join: on Python 3.11 a Ctrl-C inside join() can mark a
    # running thread as stopped, and we would free the model under its feet.
    threading.Thread(target=target, name="jackdaw-generation", daemon=True).start()
    while not finished.is_set():
        try:
            finished.wait(0.1)
        except KeyboardInterrupt:
            cancel.set()
            sys.stderr.write("\n[stopped]\n")
    if "error" in box:
        raise box["error"]
    return box["trace"]


# -- commands -------------------------------------------------------------------------------
def show_step(event: AgentEvent) -> None:
    """A line on stderr for each step (searching, calling a tool, its result)."""
    line = step_line(event)
    if line:
        sys.stderr.write(f"  · {for_terminal(line)}\n")
        sys.stderr.flush()


def cmd_ask(args: argparse.Namespace, services: Services) -> int:
    session = services.session(args.conversation)
    shown: list[str] = []

    def write(text: str) -> None:
        shown.append(text)
        sys.stdout.write(for_terminal(text))
        sys.stdout.flush()

    trace = run_interruptibly(
        lambda cancel: session.ask(
            args.question,
            on_text=None if args.json else write,
            on_event=None if args.json else show_step,
            cancel=cancel,
        )
    )
    if args.json:
        print_json(trace_result(trace))
    else:
        streamed = "".join(shown).strip()
        final = (trace.final_answer or "").strip()
        if final and final != streamed:  # cleaned, cut, or said for the model: the answer
            write(("\n" if streamed else "") + final)
        write("\n")
        print_sources(trace)
    return 0 if trace.status in ("ok", "cancelled") else 1


def print_sources(trace: Trace) -> None:
    for i, source in enumerate(trace.extra.get("sources", []), 1):
        sys.stdout.write(f"  [{i}] {for_terminal(source['source'])}\n")
    related = related_fact_line(trace.extra)
    if related:
        sys.stdout.write(f"  {for_terminal(related)}\n")


def cmd_chat(args: argparse.Namespace, services: Services) -> int:
    session = services.session(getattr(args, "conversation", None))
    info = services.chat_backend.info
    sys.stderr.write(
        f"Jackdaw {__version__} — {info.name} ({info.architecture}). "
        "Ctrl-C stops an answer; Ctrl-D or /quit leaves.\n"
    )
    if not services.config.model.path and services.config.model.backend == "local":
        sys.stderr.write(
            "Running the small default model; a larger GGUF answers better "
            "(jackdaw models discover, jackdaw models pull NAME, or jackdaw --model PATH).\n"
        )
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            sys.stderr.write("\n")
            return 0
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return 0
        shown: list[str] = []

        def write(text: str, shown: list[str] = shown) -> None:
            if not shown:
                sys.stdout.write("jackdaw> ")
            shown.append(text)
            sys.stdout.write(for_terminal(text))
            sys.stdout.flush()

        def work(cancel: threading.Event, q: str = question, w: Any = write) -> Trace:
            return session.ask(q, on_text=w, on_event=show_step, cancel=cancel)

        try:
            trace = run_interruptibly(work)
        except JackdawError as exc:
            sys.stderr.write(f"\nerror: {for_terminal(redact_text(str(exc)))}\n")
            continue
        streamed = "".join(shown).strip()
        final = (trace.final_answer or "").strip()
        if final and final != streamed:
            prefix = "\n" if streamed else ("" if shown else "jackdaw> ")
            sys.stdout.write(prefix + for_terminal(final))
        sys.stdout.write("\n")
        print_sources(trace)


def cmd_traces_list(args: argparse.Namespace, services: Services) -> int:
    rows = services.traces.list(limit=args.limit)
    if args.json:
        print_json({"traces": rows})
        return 0
    for row in rows:
        question = row["question"].replace("\n", " ")[:60]
        write_out(f"{row['id']}  {row['status']:<16} {row['steps']} steps  {question}\n")
    if not rows:
        sys.stderr.write('No runs recorded yet. Ask something: jackdaw ask "..."\n')
    return 0


def cmd_traces_show(args: argparse.Namespace, services: Services) -> int:
    trace = services.traces.get(args.id)
    if args.json:
        print_json(trace.to_dict())
        return 0
    out = write_out
    out(f"trace {trace.id}  {trace.status}  model {recorded_model_label(trace.model)}\n")
    out(f"question: {trace.question}\n")
    out(f"prompt version {trace.prompt_version}, blocks {trace.prompt_blocks}\n")
    if trace.dropped_history:
        out(f"dropped history turns: {trace.dropped_history}\n")
    for step in trace.steps:
        out(
            f"\n--- step {step.idx}: {step.kind}  ({step.prompt_tokens} prompt + "
            f"{step.completion_tokens} completion tokens, {step.duration_ms:.0f} ms)\n"
        )
        out(f"raw output: {step.raw_output}\n")
        if step.tool_name:
            out(f"tool: {step.tool_name} {json.dumps(step.tool_args)}\n")
        if step.observation:
            out(f"observation: {step.observation}\n")
        if step.error:
            out(f"error: {step.error}\n")
    out(f"\nanswer: {trace.final_answer}\n")
    return 0


def cmd_models_info(args: argparse.Namespace, services: Services) -> int:
    from models.gguf_info import model_info

    path = Path(args.path).expanduser() if args.path else services.chat_model_path
    info = model_info(path)
    if args.json:
        print_json(info.to_dict())
    else:
        for key, value in info.to_dict().items():
            write_out(f"{key:>15}: {value}\n")
    return 0


def cmd_secrets_set(args: argparse.Namespace, services: Services) -> int:
    import getpass

    if sys.stdin.isatty():
        secret = getpass.getpass(f"Secret for {args.name!r} (not shown): ")
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if not secret:
        raise JackdawError("No secret given; nothing stored.", hint="Type or pipe the secret.")
    services.secrets.set(args.name, secret)
    sys.stderr.write(f"Stored {args.name!r} in the OS keychain.\n")
    return 0


def cmd_secrets_delete(args: argparse.Namespace, services: Services) -> int:
    services.secrets.delete(args.name)
    return 0


# -- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jackdaw", description="A local-first agent for your own knowledge."
    )
    parser.add_argument("--version", action="version", version=f"jackdaw {__version__}")
    parser.add_argument(
        "--model", metavar="PATH", help="use this GGUF instead of the configured one"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", help="ask one question and print the answer")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--conversation", metavar="ID", help="continue this conversation")
    ask.set_defaults(handler=cmd_ask)

    chat = sub.add_parser("chat", help="chat in the terminal (streaming)")
    chat.add_argument("--conversation", metavar="ID", help="continue this conversation")
    chat.set_defaults(handler=cmd_chat)

    traces = sub.add_parser("traces", help="recorded runs").add_subparsers(
        dest="traces_command", metavar="ACTION", required=True
    )
    listing = traces.add_parser("list", help="the most recent runs")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=cmd_traces_list)
    show = traces.add_parser("show", help="one run, every step")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_traces_show)

    models = sub.add_parser("models", help="model files").add_subparsers(
        dest="models_command", metavar="ACTION", required=True
    )
    info = models.add_parser("info", help="what a GGUF file is (default: the configured model)")
    info.add_argument("path", nargs="?")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=cmd_models_info)
    from agent_core.cli_models import register_model_actions  # list, discover, use

    register_model_actions(models)

    secrets = sub.add_parser("secrets", help="secrets in the OS keychain").add_subparsers(
        dest="secrets_command", metavar="ACTION", required=True
    )
    put = secrets.add_parser("set", help="store a secret (read from the terminal or stdin)")
    put.add_argument("name", help="e.g. the [server] api_key_name of config.toml")
    put.set_defaults(handler=cmd_secrets_set)
    delete = secrets.add_parser("delete", help="remove a secret")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_secrets_delete)

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:  # plain `jackdaw`: the desktop app, or the terminal chat without one
        from agent_core.cli_gui import cmd_gui, gui_available

        handler = cmd_gui if gui_available() else cmd_chat
    services: Services | None = None
    try:
        services = Services(model_override=args.model)
        services.confirmer = TerminalConfirmationHandler()
        return handler(args, services)
    except JackdawError as exc:
        # Redacted (a server's error may echo a key) and escaped (it may quote a file).
        sys.stderr.write(f"error: {for_terminal(redact_text(str(exc)))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:  # e.g. `jackdaw traces list | head`
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not is_disk_full(exc):
            raise  # a fault of ours: the traceback is for us
        from agent_core.config import Paths

        where = (services.paths if services is not None else Paths.from_env()).data_dir
        sys.stderr.write(f"error: {for_terminal(disk_full_message(where))}\n")
        return 2
    finally:
        if services is not None:
            try:
                services.close()
            except Exception as exc:  # closing checkpoints the databases: a full disk again
                if not is_disk_full(exc):
                    raise


if __name__ == "__main__":
    sys.exit(main())
