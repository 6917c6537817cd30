"""calculator: arithmetic on an ``ast`` walk of a whitelist of nodes — no ``eval``.

Sizes are bounded before they are computed (``9**9**9`` would otherwise take the machine):
powers by the bits of their result, factorials by their argument, every integer by a cap.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from tools.base import Risk, Tool, ToolError

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 10_000  # ~3000 digits: below Python's int->str limit, instant to compute
MAX_FACTORIAL = 1000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _factorial(n: Number) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or n < 0:
        raise ToolError("factorial takes a whole number >= 0")
    if n > MAX_FACTORIAL:
        raise ToolError(f"factorial is limited to n <= {MAX_FACTORIAL}")
    return math.factorial(n)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": round, "min": min, "max": max,
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "degrees": math.degrees, "radians": math.radians,
    "floor": math.floor, "ceil": math.ceil, "hypot": math.hypot, "factorial": _factorial,
    "gcd": math.gcd,
}  # fmt: skip
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("the result is too large (over ~3000 digits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return value


def _power(base: Number, exponent: Number) -> Number:
    # Integer powers: the bits of the result, estimated before computing it.
    exact = isinstance(base, int) and isinstance(exponent, int)
    if exact and exponent > 0 and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ToolError("the result is too large (over ~3000 digits)")
    # Float powers are cheap whatever the exponent: they overflow or underflow at once.
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is a complex number; only real arithmetic is supported")
    return result


class _Evaluator:
    def __init__(self) -> None:
        self.nodes = 0

    def eval(self, node: ast.AST) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ToolError(f"the expression is too complex (over {MAX_NODES} parts)")
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise ToolError(f"unknown name {node.id!r}; constants: {', '.join(_CONSTANTS)}")
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                return _check_size(_power(left, right))
            if type(node.op) in _BINARY:
                return _check_size(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            func = _FUNCTIONS.get(node.func.id)
            if func is None:
                raise ToolError(
                    f"unknown function {node.func.id!r}; functions: {', '.join(_FUNCTIONS)}"
                )
            return _check_size(func(*[self.eval(a) for a in node.args]))
        raise ToolError(f"not allowed in a calculation: {ast.dump(node)[:60]}")


def evaluate(expression: str) -> Number:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ToolError(f"not a valid expression: {expression!r}") from exc
    try:
        return _Evaluator().eval(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large for a floating-point number") from None
    except (ValueError, TypeError) as exc:  # math domain errors, wrong argument counts
        raise ToolError(f"cannot compute {expression!r}: {exc}") from None


def calculate(expression: str) -> str:
    result = evaluate(expression)
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        result = int(result)
    return f"{expression} = {result}"


def make_calculator() -> Tool:
    return Tool(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly: + - * / // % ** (or ^), parentheses, "
            "sqrt, log, exp, sin/cos/tan, floor, ceil, round, min, max, factorial, pi, e."
        ),
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "minLength": 1}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        risk=Risk.READ,
        function=calculate,
        answers=True,
    )
