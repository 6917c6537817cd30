"""PermissionPolicy.decide(tool, args) -> allow / ask / deny, and the rule that decided.

Order of judgement:

1. a tool marked ``always_ask`` (``run_python``) asks, whatever rules exist: code execution
   is approved call by call, because a rule cannot see what the next piece of code does;
2. a user rule whose scope matches the call allows it (rules only ever allow);
3. otherwise the defaults: ``read`` tools are allowed when every path they touch lies inside
   the read roots (watched folders, ``[tools] allowed_paths``, the notes folder) and denied
   when any lies outside; ``write``, ``execute`` and ``network`` tools ask; anything else
   (an unknown risk class) is denied.

Paths are compared after resolving ``..`` and symlinks (the tool's ``touches`` hook), so no
spelling of a path can make a rule or a default cover more than it says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tools.base import Risk, Tool
from tools.paths import PathRefused, is_inside, resolve_roots
from tools.rules import Lifetime, Rule, RuleStore, Scope


class Effect(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True)
class Decision:
    effect: Effect
    rule: str  # what decided: "default:...", "rule:ID", "always_ask:TOOL", "user:..."
    reason: str = ""  # a sentence for the confirmation prompt or the denial observation
    rule_id: str | None = None
    # Folders the deciding rule is scoped to: the executor lets this one call reach them.
    grants: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    def to_dict(self) -> dict[str, Any]:
        return {
            "effect": str(self.effect),
            "rule": self.rule,
            "reason": self.reason,
            "rule_id": self.rule_id,
            "grants": list(self.grants),
        }


class PermissionPolicy:
    def __init__(
        self,
        read_roots: Iterable[str | os.PathLike[str]] = (),
        store: RuleStore | None = None,
    ) -> None:
        self.read_roots = resolve_roots(read_roots)
        self.store = store or RuleStore()

    # -- deciding ------------------------------------------------------------------------

    def decide(self, tool: Tool, arguments: dict[str, Any]) -> Decision:
        try:
            paths = tool.touched_paths(arguments)
        except PathRefused as exc:
            return Decision(Effect.DENY, "default:unsafe-path", str(exc))
        except (OSError, RuntimeError, ValueError) as exc:  # a path the OS itself rejects
            return Decision(Effect.DENY, "default:unsafe-path", f"unusable path: {exc}")

        if tool.always_ask:
            return Decision(
                Effect.ASK, f"always_ask:{tool.name}", f"{tool.name} asks before every call"
            )

        rule = self._matching_rule(tool, arguments, paths)
        if rule is not None:
            grants = (rule.scope.path_prefix,) if rule.scope.path_prefix else ()
            return Decision(
                Effect.ALLOW, f"rule:{rule.id}", rule.describe(), rule_id=rule.id, grants=grants
            )
        return self._default(tool, paths)

    def _matching_rule(
        self, tool: Tool, arguments: dict[str, Any], paths: list[Path]
    ) -> Rule | None:
        for rule in self.store.for_tool(tool.name):
            if not rule.scope.matches(tool.name, arguments, paths):
                continue
            if rule.lifetime is Lifetime.ONCE and not self.store.consume(rule):
                continue  # used up by a concurrent call a moment ago
            return rule
        return None

    def _default(self, tool: Tool, paths: list[Path]) -> Decision:
        if tool.risk == Risk.READ:
            outside = [p for p in paths if not any(is_inside(p, r) for r in self.read_roots)]
            if not outside:
                return Decision(
                    Effect.ALLOW, "default:read-inside-roots" if paths else "default:read"
                )
            return Decision(
                Effect.DENY,
                "default:read-outside-roots",
                f"{outside[0]} is outside the folders Jackdaw may read (the watched folders, "
                "[tools] allowed_paths and the notes folder)",
            )
        if tool.risk in (Risk.WRITE, Risk.EXECUTE, Risk.NETWORK):
            return Decision(
                Effect.ASK, f"default:ask-{tool.risk}", f"{tool.risk} tools ask before they run"
            )
        return Decision(Effect.DENY, "default:deny", f"unknown risk class {tool.risk!r}")

    # -- rules -----------------------------------------------------------------------------

    def suggest_scope(self, tool: Tool, arguments: dict[str, Any]) -> Scope | None:
        """The scope offered for "allow always": the folder holding the touched paths (never
        wider), or the bare tool when it touches none; None where no rule may apply."""
        if tool.always_ask:
            return None
        paths = tool.touched_paths(arguments)
        if not paths:
            return Scope.make(tool.name)
        folders = {p.parent for p in paths}
        common = Path(os.path.commonpath([str(f) for f in folders]))
        return Scope.make(tool.name, common)

    def allow(self, scope: Scope, lifetime: Lifetime) -> Rule:
        return self.store.add(scope, lifetime)

    def rules(self) -> list[Rule]:
        return self.store.all()

    def revoke(self, rule_id: str) -> bool:
        return self.store.revoke(rule_id)

    def end_session(self) -> None:
        """Forget ``session`` and ``once`` rules (the GUI calls this when a session ends)."""
        self.store.clear_session()
