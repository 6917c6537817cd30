"""Permission rules the user granted: a scope (what) and a lifetime (how long).

``always`` rules live in memory.db (table ``permission_rules``) so they survive restarts and
can be revoked from the CLI; ``session`` and ``once`` rules live only in this process.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from tools.paths import is_inside, resolve_path


class Lifetime(StrEnum):
    ONCE = "once"  # the next matching call, then gone
    SESSION = "session"  # until this process (or the GUI session) ends
    ALWAYS = "always"  # persisted in memory.db until revoked


def _arg_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Scope:
    """What a rule covers: one tool, optionally narrowed by a folder and/or argument globs.

    A narrowed scope only ever matches *fewer* calls than the bare tool: a path-narrowed rule
    matches only calls whose every touched path lies inside the folder (and none for a call
    that touches no path); a pattern on an argument the call lacks does not match.
    """

    tool: str
    path_prefix: str | None = None  # stored resolved, so symlinked spellings compare equal
    arg_patterns: dict[str, str] = field(default_factory=dict)  # argument -> fnmatch glob

    @classmethod
    def make(
        cls,
        tool: str,
        path_prefix: str | Path | None = None,
        arg_patterns: dict[str, str] | None = None,
    ) -> Scope:
        prefix = str(resolve_path(path_prefix)) if path_prefix else None
        return cls(tool, prefix, dict(arg_patterns or {}))

    def matches(self, tool: str, arguments: dict[str, Any], paths: Sequence[Path]) -> bool:
        if tool != self.tool:
            return False
        if self.path_prefix is not None:
            prefix = self._prefix
            if not paths or not all(is_inside(p, prefix) for p in paths):
                return False
        for name, pattern in self.arg_patterns.items():
            if name not in arguments:
                return False
            # fnmatchcase: the same answer on every OS (fnmatch folds case on Windows).
            if not fnmatch.fnmatchcase(_arg_text(arguments[name]), pattern):
                return False
        return True

    @cached_property
    def _prefix(self) -> Path:
        return Path(self.path_prefix or "")

    def describe(self) -> str:
        parts = [self.tool]
        if self.path_prefix:
            parts.append(f"in {self.path_prefix}")
        parts += [f"{k} matching {v!r}" for k, v in self.arg_patterns.items()]
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "path_prefix": self.path_prefix,
            "arg_patterns": dict(self.arg_patterns),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        return cls(data["tool"], data.get("path_prefix"), dict(data.get("arg_patterns") or {}))


@dataclass(frozen=True)
class Rule:
    id: str
    scope: Scope
    lifetime: Lifetime
    created_at: float

    def describe(self) -> str:
        return f"rule {self.id} ({self.lifetime}): allow {self.scope.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope.to_dict(),
            "lifetime": str(self.lifetime),
            "created_at": self.created_at,
            "description": self.scope.describe(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        return cls(
            str(data["id"]),
            Scope.from_dict(data["scope"]),
            Lifetime(data["lifetime"]),
            data["created_at"],
        )


class RuleStore:
    """Allow-rules by lifetime. ``conn`` is memory.db (migrated); without it, ``always`` rules
    are kept in memory too (tests, a throwaway executor)."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._memory: dict[str, Rule] = {}
        self._ids = itertools.count(1)
        self._cache: dict[str, tuple[tuple[Any, ...], list[Rule]]] = {}

    def add(self, scope: Scope, lifetime: Lifetime) -> Rule:
        now = time.time()
        with self._lock:
            if lifetime is Lifetime.ALWAYS and self.conn is not None:
                cur = self.conn.execute(
                    "INSERT INTO permission_rules"
                    " (tool, path_prefix, arg_patterns_json, created_at) VALUES (?, ?, ?, ?)",
                    (scope.tool, scope.path_prefix, json.dumps(scope.arg_patterns), now),
                )
                return Rule(str(cur.lastrowid), scope, lifetime, now)
            # Prefixed ids keep in-memory rules apart from memory.db's integer ids.
            rule = Rule(f"{lifetime.value[0]}{next(self._ids)}", scope, lifetime, now)
            self._memory[rule.id] = rule
            return rule

    def for_tool(self, tool: str) -> list[Rule]:
        """Rules for ``tool``, persisted ones first. Checked against memory.db at each call,
        so a rule revoked from another process (the CLI) stops applying at once."""
        rules = self._persisted_for(tool)
        with self._lock:
            rules += [r for r in self._memory.values() if r.scope.tool == tool]
        return rules

    def all(self) -> list[Rule]:
        rules = self._persisted("", ())
        with self._lock:
            rules += list(self._memory.values())
        return rules

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.all() if r.id == rule_id), None)

    def revoke(self, rule_id: str) -> bool:
        with self._lock:
            if self._memory.pop(rule_id, None) is not None:
                return True
            if self.conn is None or not rule_id.isdigit():
                return False
            cur = self.conn.execute("DELETE FROM permission_rules WHERE id = ?", (int(rule_id),))
            return cur.rowcount > 0

    def clear_session(self) -> None:
        with self._lock:
            self._memory = {k: r for k, r in self._memory.items() if r.lifetime is Lifetime.ALWAYS}

    def consume(self, rule: Rule) -> bool:
        """Use up a ``once`` rule; False when another call got to it first."""
        with self._lock:
            return self._memory.pop(rule.id, None) is not None

    def _persisted_for(self, tool: str) -> list[Rule]:
        if self.conn is None:
            return []
        with self._lock:
            # Rows are only ever inserted or deleted, and ids never come back (AUTOINCREMENT),
            # so (count, max id) changes whenever the tool's rules do: parse them only then.
            fingerprint = tuple(
                self.conn.execute(
                    "SELECT count(*), max(id) FROM permission_rules WHERE tool = ?", (tool,)
                ).fetchone()
            )
            cached = self._cache.get(tool)
            if cached is not None and cached[0] == fingerprint:
                return list(cached[1])
        rules = self._persisted("WHERE tool = ?", (tool,))
        with self._lock:
            self._cache[tool] = (fingerprint, rules)
        return list(rules)

    def _persisted(self, where: str, params: tuple[Any, ...]) -> list[Rule]:
        if self.conn is None:
            return []
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, tool, path_prefix, arg_patterns_json, created_at FROM permission_rules "
                f"{where} ORDER BY id",
                params,
            ).fetchall()
        return [
            Rule(str(r[0]), Scope(r[1], r[2], json.loads(r[3])), Lifetime.ALWAYS, r[4])
            for r in rows
        ]
