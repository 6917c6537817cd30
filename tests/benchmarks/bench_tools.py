"""Benchmark (a script, not a test): what the permission path adds to one tool call.

    .venv/bin/python tests/benchmarks/bench_tools.py [--calls 2000]

Times, per call, each stage alone (JSON-Schema validation, PermissionPolicy.decide, the
audit INSERT into a file-backed memory.db in WAL mode) and the whole ToolExecutor.call
around a tool that does nothing, in four situations: a read tool without paths, a read
with a path inside a watched folder, a write allowed by an "always" rule scoped to a folder
(a rule lookup in memory.db), and a read denied by policy. "run" is the tool itself (a
no-op, in its timeout thread); the difference to a direct call is the overhead. Prints
median and p95 in microseconds; the target is a median under 1 ms (1000 us) for the whole
path, negligible next to a model turn. On a machine whose cores are busy with other work,
p95 of the paths that start a timeout thread shows the OS scheduler's tick (~4 ms): the
new thread waits for a core, not for us.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent_core.memory_db import open_memory_db
from tools.audit import AuditLog
from tools.base import Risk, Tool, ToolRegistry
from tools.executor import ToolExecutor, run_with_timeout
from tools.paths import resolve_path
from tools.policy import PermissionPolicy
from tools.rules import Lifetime, RuleStore, Scope

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string", "minLength": 1}, "text": {"type": "string"}},
    "required": ["path"],
    "additionalProperties": False,
}


def make_tool(name: str, risk: Risk) -> Tool:
    return Tool(
        name,
        "does nothing",
        SCHEMA,
        risk,
        lambda path, text="": "ok",
        touches=lambda a: [resolve_path(a["path"])],
    )


def timings(fn: Callable[[], object], calls: int) -> list[float]:
    for _ in range(min(200, calls)):  # warm-up: caches, the first WAL pages
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def report(label: str, samples: list[float]) -> None:
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"  {label:<34} median {statistics.median(samples):8.1f} us   p95 {p95:8.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    watched, notes = tmp / "Documents", tmp / "Notes"
    watched.mkdir()
    notes.mkdir()
    memory = open_memory_db(tmp / "memory.db")
    reader, writer = make_tool("reader", Risk.READ), make_tool("writer", Risk.WRITE)
    plain = Tool("plain", "no paths", {"type": "object"}, Risk.READ, lambda **a: "ok")
    policy = PermissionPolicy([watched, notes], RuleStore(memory))
    for i in range(20):  # a realistic handful of persisted rules to search through
        policy.allow(Scope.make("writer", tmp / f"other{i}"), Lifetime.ALWAYS)
    policy.allow(Scope.make("writer", notes), Lifetime.ALWAYS)
    audit = AuditLog(memory)
    executor = ToolExecutor(ToolRegistry([reader, writer, plain]), policy, None, audit)

    inside = {"path": str(watched / "report.txt")}
    note = {"path": str(notes / "todo.md"), "text": "milk"}
    outside = {"path": "/etc/passwd"}
    n = args.calls
    print(f"{n} calls each; memory.db at {tmp} (WAL, synchronous=NORMAL)\n")

    print("stages alone:")
    report("validate (jsonschema)", timings(lambda: reader.validation_errors(inside), n))
    report("policy: read, no paths", timings(lambda: policy.decide(plain, {}), n))
    report("policy: read inside a root", timings(lambda: policy.decide(reader, inside), n))
    report("policy: write, rule lookup", timings(lambda: policy.decide(writer, note), n))
    report(
        "audit INSERT",
        timings(
            lambda: audit.record(
                tool="reader", arguments=inside, status="ok", observation="ok", duration_ms=0.1
            ),
            n,
        ),
    )
    report("run: direct call", timings(lambda: reader.function(**inside), n))
    report("run: in its timeout thread", timings(lambda: run_with_timeout(reader, inside, 30), n))

    print("\nwhole ToolExecutor.call (validate + policy + run + audit):")
    for label, name, arguments in [
        ("read, no paths", "plain", {}),
        ("read inside a watched folder", "reader", inside),
        ("write allowed by an always rule", "writer", note),
        ("read denied by policy", "reader", outside),
    ]:
        outcome = executor.call(name, arguments)
        assert outcome.status in ("ok", "denied"), outcome
        report(
            label, timings(lambda name=name, arguments=arguments: executor.call(name, arguments), n)
        )


if __name__ == "__main__":
    main()
