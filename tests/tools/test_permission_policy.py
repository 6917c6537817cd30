"""The policy matrix: defaults, each scope kind, each lifetime, revocation, no widening."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tools.base import Risk, Tool
from tools.paths import resolve_path
from tools.policy import Effect, PermissionPolicy
from tools.rules import Lifetime, RuleStore, Scope

PATH_SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "mode": {"type": "string"}},
    "required": ["path"],
}


def path_tool(name: str, risk: Risk | str, **kw: Any) -> Tool:
    return Tool(
        name,
        f"{name} (test)",
        PATH_SCHEMA,
        risk,  # type: ignore[arg-type]
        lambda **a: "ok",
        touches=lambda a: [resolve_path(a["path"])],
        **kw,
    )


def plain_tool(name: str, risk: Risk | str, **kw: Any) -> Tool:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    return Tool(name, name, schema, risk, lambda **a: "ok", **kw)  # type: ignore[arg-type]


READ = path_tool("reader", Risk.READ)
WRITE = path_tool("writer", Risk.WRITE)
OTHER_WRITE = path_tool("other_writer", Risk.WRITE)
NET = plain_tool("fetch", Risk.NETWORK)
EXEC = plain_tool("exec", Risk.EXECUTE, always_ask=True)
CALC = plain_tool("calc", Risk.READ)


@pytest.fixture
def policy(workspace, memory: sqlite3.Connection) -> PermissionPolicy:
    return PermissionPolicy([workspace.watched, workspace.notes], RuleStore(memory))


# -- defaults ---------------------------------------------------------------------------------
def test_defaults(policy: PermissionPolicy, workspace) -> None:
    inside = str(workspace.watched / "hello.txt")
    outside = str(workspace.outside / "secret.txt")
    assert policy.decide(CALC, {"q": "x"}).effect is Effect.ALLOW
    decision = policy.decide(READ, {"path": inside})
    assert (decision.effect, decision.rule) == (Effect.ALLOW, "default:read-inside-roots")
    decision = policy.decide(READ, {"path": outside})
    assert (decision.effect, decision.rule) == (Effect.DENY, "default:read-outside-roots")
    assert policy.decide(WRITE, {"path": inside}).effect is Effect.ASK
    assert policy.decide(NET, {}).rule == "default:ask-network"
    assert policy.decide(EXEC, {}).effect is Effect.ASK
    # An unknown risk class is denied, not asked.
    assert policy.decide(plain_tool("odd", "admin"), {}).effect is Effect.DENY


@pytest.mark.parametrize(
    "spelling",
    [
        "{watched}/../private/secret.txt",  # .. out of the folder
        "{watched}/sub/../../private/secret.txt",
        "{watched}/link-out/secret.txt",  # a symlink in the folder pointing out of it
        "/etc/passwd",  # an absolute path elsewhere
    ],
)
def test_read_default_judges_where_a_path_really_leads(policy, workspace, spelling) -> None:
    (workspace.watched / "link-out").symlink_to(workspace.outside)
    path = spelling.format(watched=workspace.watched)
    assert policy.decide(READ, {"path": path}).effect is Effect.DENY


def test_sibling_with_a_common_string_prefix_is_not_inside(policy, workspace) -> None:
    sibling = workspace.root / "Documents2"
    sibling.mkdir()
    assert policy.decide(READ, {"path": str(sibling / "x.txt")}).effect is Effect.DENY


# -- scopes -----------------------------------------------------------------------------------
def test_tool_scope_allows_that_tool_only(policy) -> None:
    policy.allow(Scope.make("fetch"), Lifetime.SESSION)
    assert policy.decide(NET, {"q": "anything"}).effect is Effect.ALLOW
    assert policy.decide(plain_tool("fetch2", Risk.NETWORK), {}).effect is Effect.ASK


def test_path_scope_covers_its_folder_and_nothing_else(policy, workspace) -> None:
    work = workspace.notes / "work"
    work.mkdir()
    rule = policy.allow(Scope.make("writer", work), Lifetime.ALWAYS)
    allowed = policy.decide(WRITE, {"path": str(work / "todo.md")})
    assert (allowed.effect, allowed.rule_id) == (Effect.ALLOW, rule.id)
    assert allowed.grants == (str(work),)
    assert policy.decide(WRITE, {"path": str(work / "deeper" / "x.md")}).allowed
    for elsewhere in [
        workspace.notes / "private.md",  # the parent folder
        workspace.notes / "work2" / "x.md",  # a string-prefix sibling
        work / ".." / "private.md",  # .. out of it
        Path.home() / ".ssh" / "authorized_keys",  # the example from the issue
    ]:
        assert policy.decide(WRITE, {"path": str(elsewhere)}).effect is Effect.ASK, elsewhere


def test_path_scope_does_not_follow_a_symlink_out(policy, workspace) -> None:
    work = workspace.notes / "work"
    work.mkdir()
    (work / "escape").symlink_to(workspace.outside)
    policy.allow(Scope.make("writer", work), Lifetime.ALWAYS)
    assert policy.decide(WRITE, {"path": str(work / "escape" / "x")}).effect is Effect.ASK


def test_path_rule_never_matches_a_call_without_paths(policy, workspace) -> None:
    policy.allow(Scope.make("fetch", workspace.notes), Lifetime.ALWAYS)
    assert policy.decide(NET, {"q": "x"}).effect is Effect.ASK


def test_rule_prefix_given_through_a_symlink_is_resolved(policy, workspace) -> None:
    alias = workspace.root / "notes-alias"
    alias.symlink_to(workspace.notes)
    policy.allow(Scope.make("writer", alias), Lifetime.ALWAYS)
    assert policy.decide(WRITE, {"path": str(workspace.notes / "a.md")}).allowed


def test_argument_pattern_scope(policy, workspace) -> None:
    policy.allow(Scope.make("fetch", arg_patterns={"q": "weather *"}), Lifetime.SESSION)
    assert policy.decide(NET, {"q": "weather Paris"}).allowed
    assert policy.decide(NET, {"q": "Weather Paris"}).effect is Effect.ASK  # case-sensitive
    assert policy.decide(NET, {"q": "stocks"}).effect is Effect.ASK
    assert policy.decide(NET, {}).effect is Effect.ASK  # the argument is missing


def test_path_and_pattern_both_narrow(policy, workspace) -> None:
    policy.allow(Scope.make("writer", workspace.notes, {"mode": "append"}), Lifetime.SESSION)
    inside = str(workspace.notes / "a.md")
    assert policy.decide(WRITE, {"path": inside, "mode": "append"}).allowed
    assert policy.decide(WRITE, {"path": inside, "mode": "create"}).effect is Effect.ASK
    outside = str(workspace.outside / "a.md")
    assert policy.decide(WRITE, {"path": outside, "mode": "append"}).effect is Effect.ASK


def test_rule_for_one_tool_does_not_allow_another(policy, workspace) -> None:
    policy.allow(Scope.make("writer", workspace.notes), Lifetime.ALWAYS)
    decision = policy.decide(OTHER_WRITE, {"path": str(workspace.notes / "a.md")})
    assert decision.effect is Effect.ASK


def test_read_rule_extends_reading_to_its_folder_only(policy, workspace) -> None:
    policy.allow(Scope.make("reader", workspace.outside), Lifetime.ALWAYS)
    decision = policy.decide(READ, {"path": str(workspace.outside / "secret.txt")})
    assert decision.allowed and decision.grants == (str(workspace.outside),)
    assert policy.decide(READ, {"path": "/etc/passwd"}).effect is Effect.DENY


def test_always_ask_tool_ignores_rules(policy) -> None:
    policy.allow(Scope.make("exec"), Lifetime.ALWAYS)
    decision = policy.decide(EXEC, {"q": "x"})
    assert (decision.effect, decision.rule) == (Effect.ASK, "always_ask:exec")
    assert policy.suggest_scope(EXEC, {}) is None


def test_suggested_scope_is_the_folder_of_the_call(policy, workspace) -> None:
    scope = policy.suggest_scope(WRITE, {"path": str(workspace.notes / "work" / "a.md")})
    assert scope == Scope(tool="writer", path_prefix=str(workspace.notes / "work"))
    assert policy.suggest_scope(NET, {}) == Scope(tool="fetch")


# -- lifetimes and revocation -----------------------------------------------------------------
def test_once_rule_is_used_up(policy) -> None:
    policy.allow(Scope.make("fetch"), Lifetime.ONCE)
    assert policy.decide(NET, {}).allowed
    assert policy.decide(NET, {}).effect is Effect.ASK
    assert policy.rules() == []


def test_session_rule_lasts_for_the_session_only(policy, workspace, memory) -> None:
    policy.allow(Scope.make("fetch"), Lifetime.SESSION)
    assert policy.decide(NET, {}).allowed and policy.decide(NET, {}).allowed
    # Another process (a new policy over the same memory.db) does not inherit it ...
    other = PermissionPolicy([workspace.watched], RuleStore(memory))
    assert other.decide(NET, {}).effect is Effect.ASK
    # ... and ending the session forgets it.
    policy.end_session()
    assert policy.decide(NET, {}).effect is Effect.ASK


def test_always_rule_is_persisted(policy, workspace, memory) -> None:
    rule = policy.allow(Scope.make("fetch", arg_patterns={"q": "a*"}), Lifetime.ALWAYS)
    row = memory.execute("SELECT tool, arg_patterns_json FROM permission_rules").fetchone()
    assert tuple(row) == ("fetch", '{"q": "a*"}')
    restarted = PermissionPolicy([workspace.watched], RuleStore(memory))
    assert restarted.decide(NET, {"q": "abc"}).rule == f"rule:{rule.id}"
    assert [r.to_dict() for r in restarted.rules()] == [rule.to_dict()]


def test_revocation(policy, workspace, memory) -> None:
    always = policy.allow(Scope.make("fetch"), Lifetime.ALWAYS)
    session = policy.allow(Scope.make("writer"), Lifetime.SESSION)
    assert {r.id for r in policy.rules()} == {always.id, session.id}
    # Revoked from "another process" (the CLI): takes effect at the next decision.
    assert PermissionPolicy(store=RuleStore(memory)).revoke(always.id)
    assert policy.decide(NET, {}).effect is Effect.ASK
    assert policy.revoke(session.id)
    assert policy.decide(WRITE, {"path": str(workspace.notes / "a")}).effect is Effect.ASK
    assert not policy.revoke(always.id)
    assert not policy.revoke("nonsense")


def test_revoked_ids_are_not_reused(policy) -> None:
    first = policy.allow(Scope.make("fetch"), Lifetime.ALWAYS)
    policy.revoke(first.id)
    second = policy.allow(Scope.make("fetch"), Lifetime.ALWAYS)
    assert second.id != first.id


def test_rule_round_trips_through_dict(policy, workspace) -> None:
    from tools.rules import Rule

    rule = policy.allow(Scope.make("writer", workspace.notes, {"mode": "a*"}), Lifetime.SESSION)
    assert Rule.from_dict(rule.to_dict()) == rule
