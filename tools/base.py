"""What a tool is, and the registry that hands tool specs to the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonschema


class Risk(StrEnum):
    """How much a tool can change the world; the permission policy keys on it."""

    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    NETWORK = "network"


@dataclass(frozen=True)
class Tool:
    """A named function the model may call, with a JSON Schema for its arguments.

    ``function`` receives the validated arguments as keyword arguments and returns text
    (or anything JSON-serialisable, which is rendered as JSON for the model).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    risk: Risk
    function: Callable[..., Any] = field(compare=False, repr=False)

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

    def validation_errors(self, arguments: Any) -> list[str]:
        """Every way ``arguments`` break this tool's schema; empty when they are valid."""
        validator = jsonschema.Draft202012Validator(self.parameters)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(arguments)'}: {e.message}"
            for e in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        ]


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
