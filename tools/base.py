"""What a tool is, and the registry that hands tool specs to the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema


class Risk(StrEnum):
    """How much a tool can change the world; the permission policy keys on it."""

    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    NETWORK = "network"


class ToolError(Exception):
    """A tool could not do what it was asked; the message is shown to the model as it is.

    Raised for the model's mistakes (a path outside the allowed folders, a file too big), so
    the executor turns it into an error observation without a Python type name in front.
    """


class ToolTimeout(ToolError):
    """A tool ran past its time limit (the executor reports status ``timeout``)."""


@dataclass(frozen=True)
class Tool:
    """A named function the model may call, with a JSON Schema for its arguments.

    ``function`` receives the validated arguments as keyword arguments and returns text
    (or anything JSON-serialisable, which is rendered as JSON for the model).

    The optional hooks let the permission path reason about a call before it runs:

    - ``touches(arguments)``: the resolved filesystem paths the call would read or write, so
      a rule scoped to a folder can be checked against where the call really goes;
    - ``preview(arguments)``: for writes, what would change (shown in the confirmation);
    - ``always_ask``: no rule may turn this tool's "ask" into "allow" (``run_python``);
    - ``timeout_s``: this tool's own time limit, overriding the executor's default.
    """

    name: str
    description: str
    # Also the grammar that constrains the model's output (llama.cpp converts it): keep it
    # small. No maxLength/maxItems: llama.cpp expands them into repeated rules and refuses
    # large ones (then crashes sampling); tools enforce their size caps themselves.
    parameters: dict[str, Any]
    risk: Risk
    function: Callable[..., Any] = field(compare=False, repr=False)
    touches: Callable[[dict[str, Any]], list[Path]] | None = field(
        default=None, compare=False, repr=False
    )
    preview: Callable[[dict[str, Any]], str] | None = field(default=None, compare=False, repr=False)
    always_ask: bool = False
    timeout_s: float | None = None
    # What the tool can reach on this machine, for the person asked to approve a call (the
    # model gets the short ``description``): e.g. run_python's sandbox, or the lack of one.
    confinement: str = ""
    # Its result is what the question asked for (a sum, the date): once a call succeeds, the
    # next turn answers. Offered the tools again, the 0.5B model called it a second time.
    answers: bool = False

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function spec the model sees."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @cached_property
    def _validator(self) -> jsonschema.Draft202012Validator:
        # Built once per tool: constructing a validator costs more than validating a call.
        return jsonschema.Draft202012Validator(self.parameters)

    def validation_errors(self, arguments: Any) -> list[str]:
        """Every way ``arguments`` break this tool's schema; empty when they are valid."""
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(arguments)'}: {e.message}"
            for e in sorted(
                self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)
            )
        ]

    def touched_paths(self, arguments: dict[str, Any]) -> list[Path]:
        return list(self.touches(arguments)) if self.touches else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "risk": str(self.risk),
            "parameters": self.parameters,
            "always_ask": self.always_ask,
            "confinement": self.confinement,
        }


class ToolRegistry:
    """The tools the agent may use, by name, in registration order."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self._tools.values()]

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
