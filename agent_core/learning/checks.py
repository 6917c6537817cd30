"""Check functions stored as data: the preconditions and postconditions of a script's steps.

A check is ``{"kind": ..., **params}``; :func:`precondition_failure` and
:func:`postcondition_failure` evaluate it and return None when it holds, else a sentence
saying why not (recorded on the trace as the reason a replay fell back to the model).

Preconditions: ``tool_exists``, ``tool_permitted`` (the policy would not deny the call;
it may still ask), ``args_valid`` (the tool's JSON Schema), ``file_unchanged`` (a file the
script reads still exists with the same sha256), ``paths_exist`` (files a filled-in call
reads exist), ``results_unchanged`` (earlier results that literal values came from are the
same as when recorded). Postconditions: ``status_ok``, ``non_empty``, ``result_type``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.base import Risk, Tool, ToolError
from tools.executor import ToolExecutor, ToolOutcome
from tools.paths import is_inside

PRECONDITIONS = (
    "tool_exists",
    "tool_permitted",
    "args_valid",
    "file_unchanged",
    "paths_exist",
    "results_unchanged",
)
POSTCONDITIONS = ("status_ok", "non_empty", "result_type")


@dataclass(frozen=True)
class Check:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        params = {k: v for k, v in data.items() if k != "kind"}
        return cls(data["kind"], params)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "sha256")
        return f"{self.kind}({extra})" if extra else self.kind


def sha256_file(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def result_type(observation: str) -> str:
    """The shape of a tool result as the model saw it: a JSON type, or plain ``text``."""
    try:
        value = json.loads(observation)
    except (json.JSONDecodeError, TypeError):
        return "text"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "text" if isinstance(value, str) else "null"


def read_paths(tool: Tool, arguments: Any) -> list[Path]:
    """Files a read tool's call touches (empty for other tools or when it cannot tell)."""
    if tool.risk != Risk.READ or not isinstance(arguments, dict):
        return []
    try:
        return [p for p in tool.touched_paths(arguments) if p.is_file()]
    except ToolError:
        return []


def permission_failure(executor: ToolExecutor, tool: Tool, arguments: dict[str, Any]) -> str | None:
    """Would the policy deny this call? Mirrors PermissionPolicy.decide without consuming a
    "once" rule; "ask" counts as permitted (the executor asks when the call is made)."""
    policy = executor.policy
    try:
        paths = tool.touched_paths(arguments)
    except ToolError as exc:
        return f"{tool.name} may not touch that path: {exc}"
    if tool.always_ask:
        return None
    if any(r.scope.matches(tool.name, arguments, paths) for r in policy.store.for_tool(tool.name)):
        return None
    if tool.risk == Risk.READ:
        outside = [p for p in paths if not any(is_inside(p, r) for r in policy.read_roots)]
        return f"{outside[0]} is outside the folders Jackdaw may read" if outside else None
    if tool.risk in (Risk.WRITE, Risk.EXECUTE, Risk.NETWORK):
        return None
    return f"{tool.name} has an unknown risk class"


def precondition_failure(
    check: Check,
    *,
    executor: ToolExecutor,
    tool_name: str,
    arguments: Any,
    results: list[str],
) -> str | None:
    tool = executor.registry.get(tool_name)
    if check.kind == "tool_exists":
        return None if tool is not None else f"the tool {tool_name} no longer exists"
    if tool is None:
        return f"the tool {tool_name} no longer exists"
    if check.kind == "args_valid":
        errors = tool.validation_errors(arguments)
        return f"arguments for {tool_name} do not validate: {'; '.join(errors)}" if errors else None
    if check.kind == "tool_permitted":
        return permission_failure(executor, tool, arguments if isinstance(arguments, dict) else {})
    if check.kind == "file_unchanged":
        path = Path(check.params["path"])
        digest = sha256_file(path)
        if digest is None:
            return f"{path} no longer exists"
        return None if digest == check.params["sha256"] else f"{path} has changed"
    if check.kind == "paths_exist":
        try:
            paths = tool.touched_paths(arguments) if isinstance(arguments, dict) else []
        except ToolError as exc:
            return str(exc)
        missing = [p for p in paths if not p.exists()]
        return f"{missing[0]} does not exist" if missing else None
    if check.kind == "results_unchanged":
        for key, digest in check.params.get("sha256", {}).items():
            j = int(key)
            if j >= len(results) or sha256_text(results[j]) != digest:
                return f"the result of step {j + 1} differs from the recorded run"
        return None
    raise ValueError(f"unknown precondition {check.kind!r}")  # a bug of ours, not the user's


def postcondition_failure(check: Check, outcome: ToolOutcome) -> str | None:
    if check.kind == "status_ok":
        return None if outcome.ok else f"{outcome.tool} ended with status {outcome.status}"
    if check.kind == "non_empty":
        return None if outcome.observation.strip() else f"{outcome.tool} returned nothing"
    if check.kind == "result_type":
        got = result_type(outcome.observation)
        want = check.params["type"]
        return None if got == want else f"{outcome.tool} returned {got}, expected {want}"
    raise ValueError(f"unknown postcondition {check.kind!r}")
