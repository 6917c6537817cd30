"""A llama.cpp grammar (GBNF) for a JSON Schema whose every output is valid JSON.

llama-cpp-python's JSON-Schema converter (``llama_cpp.llama_grammar``, 0.3.x) lets a string
hold any character but ``"`` and ``\\``: raw newlines and other control characters, which
JSON forbids inside strings (``json.loads`` refuses them). Its ``dot`` (``.`` in a ``pattern``)
even lets a raw ``"`` through. llama.cpp's own converter (the one ``llama-server`` uses) has the
right string rule. Here the converter's output is taken and those two rules are replaced.
"""

from __future__ import annotations

import json
import re
from typing import Any

# As llama.cpp's common/json-schema-to-grammar.cpp writes it: no raw control characters.
_HEX = "[0-9a-fA-F]"
JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" ' + " ".join([_HEX] * 4) + ")"
# Any single character a JSON string may hold unescaped.
JSON_DOT = r'[^"\\\x7F\x00-\x1F]'
_RULES = {"char": JSON_CHAR, "dot": JSON_DOT}
_RULE_LINE = re.compile(r"^(char|dot) ::= .*$", re.MULTILINE)


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """GBNF for ``schema`` (large repetition bounds dropped, as for the local backend)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from models.llama_backend import grammar_safe

    gbnf = json_schema_to_gbnf(json.dumps(grammar_safe(schema)))
    return _RULE_LINE.sub(lambda m: f"{m.group(1)} ::= {_RULES[m.group(1)]}", gbnf)
