"""``jackdaw tools``, ``jackdaw permissions`` and ``jackdaw audit``.

``tools call`` goes through the same :meth:`ToolExecutor.call` as the agent — validation,
policy, the terminal confirmation, audit — so trying a tool by hand proves what the agent
would be allowed to do."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from agent_core.cli_output import print_json, write_err, write_out
from agent_core.config import Config, Paths
from models.errors import JackdawError
from tools.executor import ToolExecutor
from tools.rules import Lifetime, Scope
from tools.terminal import TerminalConfirmationHandler


class ToolArgumentsError(JackdawError):
    hint = (
        "Pass the arguments as one JSON object in single quotes, e.g. "
        'jackdaw tools call calculator \'{"expression": "2+2"}\''
    )


class UnknownToolError(JackdawError):
    hint = "See the tools there are: jackdaw tools list"


class RuleNotFoundError(JackdawError):
    hint = "See the rules there are: jackdaw permissions list"


class RuleRefusedError(JackdawError):
    hint = "Narrow the rule to an argument the tool has (jackdaw tools list shows its schema)."


class ToolServices(Protocol):
    config: Config
    paths: Paths
    memory: sqlite3.Connection
    tool_executor: ToolExecutor


def _executor(services: ToolServices) -> ToolExecutor:
    return services.tool_executor


# -- output -----------------------------------------------------------------------------------


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _one_line(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# -- commands ---------------------------------------------------------------------------------
def cmd_tools_list(args: argparse.Namespace, services: ToolServices) -> int:
    executor = _executor(services)
    tools = [tool.to_dict() for tool in executor.registry]
    if args.json:
        print_json({"tools": tools})
        return 0
    for tool in tools:
        props = tool["parameters"].get("properties", {})
        required = set(tool["parameters"].get("required", []))
        params = ", ".join(f"{name}{'' if name in required else '?'}" for name in props)
        write_out(f"{tool['name']:<18} {tool['risk']:<8} ({params})\n")
        write_out(f"{'':<18} {tool['description']}\n")
        if tool.get("confinement"):
            write_out(f"{'':<18} {tool['confinement']}\n")
    return 0


def cmd_tools_call(args: argparse.Namespace, services: ToolServices) -> int:
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(f"The arguments are not valid JSON: {exc}") from None
    executor = _executor(services).with_confirmer(TerminalConfirmationHandler())
    outcome = executor.call(args.name, arguments)
    if args.json:
        print_json({"outcome": outcome.to_dict()})
    else:
        write_out(outcome.observation + "\n")  # a file's text, a tool's output: anything
        if not outcome.ok:
            write_err(f"[{outcome.status}; rule {outcome.rule}; audit {outcome.audit_id}]\n")
    return 0 if outcome.ok else 1


def cmd_permissions_list(args: argparse.Namespace, services: ToolServices) -> int:
    rules = _executor(services).policy.rules()
    if args.json:
        print_json({"rules": [rule.to_dict() for rule in rules]})
        return 0
    if not rules:
        sys.stderr.write(
            "No permission rules. Answering [a] to a confirmation adds one; so does "
            "jackdaw permissions allow TOOL --path FOLDER.\n"
        )
    for rule in rules:
        write_out(
            f"{rule.id:>4}  {rule.lifetime:<8} {_when(rule.created_at)}  "
            f"allow {rule.scope.describe()}\n"
        )
    return 0


def cmd_permissions_revoke(args: argparse.Namespace, services: ToolServices) -> int:
    policy = _executor(services).policy
    if not policy.revoke(args.id):
        raise RuleNotFoundError(f"There is no permission rule {args.id}.")
    write_out(f"Revoked rule {args.id}.\n")
    return 0


def cmd_permissions_allow(args: argparse.Namespace, services: ToolServices) -> int:
    executor = _executor(services)
    tool = executor.registry.get(args.tool)
    if tool is None:
        raise UnknownToolError(f"There is no tool named {args.tool!r}.")
    if tool.always_ask:
        raise JackdawError(
            f"{tool.name} asks before every call; no rule can change that.",
            hint="Approve each call when it is shown to you.",
        )
    patterns: dict[str, str] = {}
    properties = tool.parameters.get("properties", {})
    for item in args.arg or []:
        name, sep, pattern = item.partition("=")
        if not sep or not name:
            raise RuleRefusedError(f"--arg takes NAME=GLOB, not {item!r}.")
        if name not in properties:
            raise RuleRefusedError(f"{tool.name} has no argument {name!r}.")
        patterns[name] = pattern
    scope = Scope.make(tool.name, args.path, patterns)
    rule = executor.policy.allow(scope, Lifetime.ALWAYS)
    if args.json:
        print_json({"rule": rule.to_dict()})
    else:
        write_out(f"Added rule {rule.id}: allow {scope.describe()}.\n")
    return 0


def cmd_audit(args: argparse.Namespace, services: ToolServices) -> int:
    executor = _executor(services)
    assert executor.audit is not None
    entries = executor.audit.recent(args.limit, tool=args.tool, trace_id=args.trace)
    if args.json:
        print_json({"entries": [entry.to_dict() for entry in entries]})
        return 0
    if not entries:
        sys.stderr.write("No tool calls recorded yet.\n")
    for e in reversed(entries):  # oldest first, like a log
        write_out(
            f"{e.id:>5}  {_when(e.created_at)}  {e.tool:<16} {e.status:<17} "
            f"{e.decision or '-':<5} {e.rule or '-':<26} {e.duration_ms:8.1f} ms  "
            f"{_one_line(e.arguments, 60)}\n"
        )
    return 0


# -- parser -----------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def register(subparsers: Any) -> None:
    Handler = Callable[[argparse.Namespace, ToolServices], int]

    def leaf(parent: Any, name: str, help: str, handler: Handler, json_flag: bool = True) -> Any:
        parser = parent.add_parser(name, help=help)
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(handler=handler)
        return parser

    tools = subparsers.add_parser("tools", help="the tools the agent may use").add_subparsers(
        dest="tools_command", metavar="ACTION", required=True
    )
    leaf(tools, "list", "name, risk, description and argument schema of each tool", cmd_tools_list)
    call = leaf(
        tools, "call", "run a tool by hand, through the same permission path", cmd_tools_call
    )
    call.add_argument("name")
    call.add_argument("arguments", nargs="?", default="{}", help="a JSON object")

    perms = subparsers.add_parser("permissions", help="permission rules").add_subparsers(
        dest="permissions_command", metavar="ACTION", required=True
    )
    leaf(perms, "list", "the rules in force", cmd_permissions_list)
    revoke = leaf(perms, "revoke", "remove a rule", cmd_permissions_revoke, json_flag=False)
    revoke.add_argument("id")
    allow = leaf(perms, "allow", "add an always-rule", cmd_permissions_allow)
    allow.add_argument("tool")
    allow.add_argument("--path", help="only inside this folder")
    allow.add_argument(
        "--arg", action="append", metavar="NAME=GLOB", help="only when argument NAME matches GLOB"
    )

    audit = subparsers.add_parser("audit", help="the log of tool calls")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.add_argument("--limit", type=_positive_int, default=20)
    audit.add_argument("--tool", help="only calls of this tool")
    audit.add_argument("--trace", metavar="ID", help="only calls made in this run")
    audit.set_defaults(handler=cmd_audit)
