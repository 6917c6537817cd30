"""The real embedded SmolLM2-135M through llama.cpp, at temperature 0 with a fixed seed."""

from __future__ import annotations

import json
import threading

import jsonschema
import pytest

from agent_core.actions import action_schema
from models.chat import GenerationSettings
from models.errors import ContextTooSmallError
from tools.base import Risk, Tool

pytestmark = pytest.mark.real_model
GREEDY = GenerationSettings(temperature=0.0, seed=1234, max_tokens=48)
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_plain_answer(smol) -> None:
    result = smol.chat(QUESTION, GREEDY)
    assert result.text.strip()  # which words depends on the CPU's arithmetic: not asserted
    assert result.finish_reason in ("stop", "length")
    assert result.prompt_tokens == smol.count_prompt_tokens(QUESTION)
    assert 0 < result.completion_tokens <= GREEDY.max_tokens
    assert "<|im_start|>system" in result.prompt  # the GGUF's own chat template was used


def test_same_seed_same_output(smol) -> None:
    settings = GenerationSettings(temperature=0.8, seed=99, max_tokens=24)
    assert smol.chat(QUESTION, settings).text == smol.chat(QUESTION, settings).text


def test_schema_constrained_tool_call_parses_and_validates(smol) -> None:
    weather = Tool(
        "get_weather",
        "Weather for a city.",
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
        Risk.READ,
        lambda city, days: "sunny",
    )
    # Only tool calls allowed: the grammar must force a valid call even from a 135M model.
    schema = action_schema([weather])["anyOf"][1]
    messages = [
        {"role": "system", "content": "Call get_weather. Reply in JSON."},
        {"role": "user", "content": "Weather in Oslo for the next 3 days?"},
    ]
    result = smol.chat(
        messages, GenerationSettings(temperature=0, seed=1, max_tokens=80), response_schema=schema
    )
    action = json.loads(result.text)
    jsonschema.validate(action, schema)
    assert action["tool"] == "get_weather"
    assert weather.validation_errors(action["arguments"]) == []


def test_streaming_with_cancel(smol) -> None:
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 5:
            cancel.set()

    messages = [{"role": "user", "content": "Write a long story about a dragon."}]
    result = smol.chat(
        messages, GenerationSettings(temperature=0, max_tokens=200), on_text=on_text, cancel=cancel
    )
    assert result.cancelled
    assert len(pieces) == 5 and result.text == "".join(pieces)
    # The lane is free again after a cancel.
    assert smol.chat(QUESTION, GREEDY).finish_reason in ("stop", "length")


def test_token_counting_uses_the_models_tokenizer(smol) -> None:
    assert smol.count_tokens("") == 0
    assert smol.count_tokens("hello") == 1
    text = "Jackdaws are clever birds of the crow family."
    assert smol.count_tokens(text) == len(smol._llama.tokenize(text.encode(), add_bos=False))
    assert smol.count_tokens(text * 10) > 10 * smol.count_tokens(text) - 10


def test_prompt_larger_than_context_is_refused(smol) -> None:
    huge = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(ContextTooSmallError, match="context holds 2048") as err:
        smol.chat(huge, GREEDY)
    assert "n_ctx" in str(err.value)


def test_model_info(smol) -> None:
    info = smol.info
    assert info.architecture == "llama" and info.quantization == "Q4_1"
    assert len(info.sha256) == 64
    assert smol.context_size == 2048


def test_large_bounds_stay_out_of_the_grammar_and_never_crash(smol) -> None:
    # llama.cpp refuses a maxLength of ~3000 in a grammar and crashes on 100000.
    schema = {
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 100000}},
        "required": ["text"],
        "additionalProperties": False,
    }
    messages = [{"role": "user", "content": "Reply with JSON with a short text."}]
    result = smol.chat(messages, GREEDY, response_schema=schema)
    assert result.text.replace(" ", "").startswith('{"text":"')  # constrained, and no crash


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_constrained_strings_never_hold_raw_newlines(smol, temperature: float) -> None:
    # llama-cpp-python's own schema converter lets raw newlines into strings: invalid JSON.
    schema = {
        "type": "object",
        "properties": {"poem": {"type": "string"}},
        "required": ["poem"],
        "additionalProperties": False,
    }
    assert r'char ::= [^"\\\x7F\x00-\x1F]' in smol._grammar(schema)._grammar  # JSON's rule
    messages = [{"role": "user", "content": "Write a poem of four short lines, as JSON."}]
    settings = GenerationSettings(temperature=temperature, seed=5, max_tokens=120)
    result = smol.chat(messages, settings, response_schema=schema)
    assert not any(ch < " " and ch not in " \t\n\r" for ch in result.text)
    if result.finish_reason != "length":
        json.loads(result.text)  # strict: a raw control character in a string fails here
    else:
        assert "\n" not in result.text.split('"poem"', 1)[-1].split('"', 1)[-1]


def test_text_only_replies_cannot_start_a_tool_call(smol) -> None:
    # Asked for JSON, a free reply would start with "{": held to text, it cannot.
    messages = [{"role": "user", "content": 'Reply only with this JSON: {"name": "x"}'}]
    free = smol.chat(messages, GREEDY)
    held = smol.chat(messages, GREEDY, text_only=True)
    assert held.text and held.text[0] not in "{<`[ \n"
    assert free.finish_reason in ("stop", "length")


def test_a_prefix_is_continued_not_repeated(smol) -> None:
    messages = [{"role": "user", "content": "Count from one to five in words."}]
    result = smol.chat(messages, GREEDY, prefix="One, two,")
    assert result.prompt.endswith("One, two,")  # the reply continues the given start
    assert result.prompt_tokens == len(smol.format_prompt(messages, None, "One, two,")[1])


def test_tools_go_through_the_template_and_are_counted(smol) -> None:
    from agent_core.protocols import tool_specs
    from tools.builtins.calculator import make_calculator

    specs = tool_specs([make_calculator()])
    with_tools = smol.count_prompt_tokens(QUESTION, specs)
    assert with_tools >= smol.count_prompt_tokens(QUESTION)


def test_stop_acts_while_a_long_prompt_is_read(smol) -> None:
    cancel = threading.Event()
    long_prompt = [{"role": "user", "content": "lorem ipsum dolor sit amet " * 150}]
    total = len(smol.format_prompt(long_prompt)[1])
    threading.Timer(0.05, cancel.set).start()
    result = smol.chat(long_prompt, GREEDY, cancel=cancel)
    assert result.cancelled and result.completion_tokens == 0
    # Stopped part-way through reading the prompt, at a slice boundary, not after it.
    assert smol._llama.n_tokens < total - 1
    assert smol.chat(QUESTION, GREEDY).finish_reason in ("stop", "length")  # the lane is free
