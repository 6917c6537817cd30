"""How the agent and a model talk: the answer is free text, a tool call is structured.

A person reads the answer, so it streams token by token and is never wrapped in JSON (a small
model forced to write its answer inside a JSON envelope copies the envelope instead of
answering). One protocol object per family of chat templates, chosen from the template:

- :data:`HERMES` (Qwen2.5/Qwen3, Hermes, SmolLM3 ...): ``<tool_call>{"name", "arguments"}``
- :data:`MISTRAL`: ``[TOOL_CALLS][{"name", "arguments"}]``
- :data:`LLAMA3` (Llama 3.1+): the reply is ``{"name": ..., "parameters": ...}``
- :data:`DECIDE` for templates without tools: a short grammar-constrained *decision* (a tool
  with its arguments, or none), then the answer as free text.

A native protocol streams the reply freely with the tool specs in the model's own template.
The moment the model starts a tool call (its trigger) the free generation stops and the call
is generated again from the trigger under the tools' JSON Schema grammar: the same prompt
continued, so llama.cpp's prefix cache makes that cheap, and the call cannot mis-parse.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_core.actions import CALL, FINAL, Action
from models.chat import ChatBackend, ChatResult, GenerationSettings, Message, ToolSpec
from models.errors import JackdawError
from tools.base import Tool

TextCallback = Callable[[str], None]


class UnknownProtocolError(JackdawError, ValueError):
    hint = 'Set [agent] protocol in config.toml to "auto" (or remove the line).'


@dataclass
class Reply:
    """One model turn as the agent sees it."""

    action: Action | None  # None: a mistake (``error``) or cancelled
    raw: str  # what the model said, in the protocol's canonical form (the trace's raw_output)
    results: list[ChatResult] = field(default_factory=list)  # one per backend call
    error: str = ""  # a mistake of the model, fed back so it can retry
    cancelled: bool = False
    truncated: bool = False  # the answer ran past max_tokens

    @property
    def prompt_tokens(self) -> int:
        return max((r.prompt_tokens for r in self.results), default=0)

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.results)

    @property
    def duration_ms(self) -> float:
        return sum(r.duration_ms for r in self.results)

    @property
    def first_token_ms(self) -> float:
        return self.results[0].first_token_ms if self.results else 0.0


def tool_specs(tools: Sequence[Tool]) -> list[ToolSpec]:
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in tools
    ]


def _call_id(index: int) -> str:
    # Mistral's templates want 9 alphanumeric characters; the others ignore the id.
    return f"call{index:05d}"


class _Trigger:
    """Watches a streamed reply for the start of a tool call, and holds back the text that
    may still turn out to be one (so no call ever reaches the person as text).

    ``anywhere`` triggers count wherever they appear; ``at_start`` ones only when the reply
    starts with them (small models often write a call as bare JSON, without its tags)."""

    def __init__(
        self, anywhere: Sequence[str], at_start: Sequence[str], on_text: TextCallback | None
    ) -> None:
        self.anywhere = tuple(anywhere)
        self.at_start = tuple(at_start)
        self.on_text = on_text
        self.text = ""
        self.sent = 0
        self.fired = -1  # index in text where the call starts
        self.starting = bool(at_start)  # still at the start of the reply

    def feed(self, piece: str) -> bool:
        """Add a piece; True once a call has started."""
        self.text += piece
        if self.fired >= 0:
            return True
        if self.starting:
            stripped = self.text.lstrip()
            lead = len(self.text) - len(stripped)
            if any(stripped.startswith(t) for t in self.at_start + self.anywhere):
                self.fired = lead
                return True
            if any(t.startswith(stripped) for t in self.at_start):
                return False  # could still become a call
            self.starting = False
        for trigger in self.anywhere:
            found = self.text.find(trigger, max(0, self.sent - len(trigger)))
            if found >= 0:
                self.fired = found
                self._emit(found)
                return True
        keep = 0
        for trigger in self.anywhere:
            for n in range(min(len(trigger) - 1, len(self.text)), keep, -1):
                if self.text.endswith(trigger[:n]):
                    keep = n
                    break
        self._emit(len(self.text) - keep)
        return False

    def flush(self) -> None:
        """The reply ended without a call: the rest of it is the answer."""
        if self.fired < 0 and self.on_text is not None and len(self.text) > self.sent:
            self.on_text(self.text[self.sent :])
            self.sent = len(self.text)

    def _emit(self, upto: int) -> None:
        # Nothing is shown until the reply has a word in it: stray marks a small model puts
        # before a call (">", a code fence) never reach the person.
        if upto > self.sent and _has_word(self.text[:upto]):
            if self.on_text is not None:
                self.on_text(self.text[self.sent : upto])
            self.sent = upto


def _has_word(text: str) -> bool:
    """Whether ``text`` says anything: stray marks before a call (">", a fence) do not."""
    return any(ch.isalnum() for ch in text)


class _Either(threading.Event):
    """Set when the user's Stop or our own trigger is set (what a backend checks)."""

    def __init__(self, user: threading.Event | None) -> None:
        super().__init__()
        self.user = user

    def is_set(self) -> bool:
        return super().is_set() or (self.user is not None and self.user.is_set())


def _truncated(result: ChatResult) -> bool:
    return result.finish_reason == "length"


@dataclass(frozen=True)
class NativeToolCalls:
    """Tool calls in the model's own format, written into the prompt by its chat template."""

    name: str
    trigger: str  # what starts a call in the model's own format
    call_prefix: str  # what the constrained continuation starts from (after any text)
    at_start: bool  # the trigger counts only at the start of the reply
    wrap_list: bool  # the call is a JSON list of calls (Mistral)
    arguments_key: str = "arguments"
    closing: str = ""  # what closes the call in the canonical raw form
    # Other ways a reply may start a call (bare or fenced JSON, as small models write it).
    loose_starts: tuple[str, ...] = ()
    # A bare JSON call naming one of the tools starts a call even mid-reply.
    bare_calls_anywhere: bool = False

    native = True

    def system_tools_text(self, tools: Sequence[Tool]) -> str:
        return ""  # the template writes the tool specs itself

    def specs(self, tools: Sequence[Tool]) -> list[ToolSpec] | None:
        return tool_specs(tools) or None

    def call_schema(self, tools: Sequence[Tool]) -> dict[str, Any]:
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, self.arguments_key: t.parameters},
                "required": ["name", self.arguments_key],
                "additionalProperties": False,
            }
            for t in tools
        ]
        one: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
        if self.wrap_list:
            return {"type": "array", "items": one, "minItems": 1, "maxItems": 1}
        return one

    def descriptor(self, tools: Sequence[Tool], allow_tools: bool) -> dict[str, Any]:
        """What this turn was allowed to say (recorded as the step's response_schema)."""
        out: dict[str, Any] = {"protocol": self.name, "answer": "free text"}
        if allow_tools and tools:
            out["tool_call"] = self.call_schema(tools)
        return out

    def render_call(self, tool: str, arguments: Any, before: str = "") -> str:
        body: Any = {"name": tool, self.arguments_key: arguments}
        if self.wrap_list:
            body = [body]
        return f"{before}{self.call_prefix}{json.dumps(body, ensure_ascii=False)}{self.closing}"

    def parse(self, raw: str, allow_tools: bool = True) -> Action:
        """The action in ``raw`` (a canonical raw output of this protocol)."""
        at = raw.find(self.trigger) if self.trigger else -1
        if self.at_start and at >= 0 and raw[:at].strip():
            at = -1
        if at < 0:
            return Action(FINAL, answer=_clean_answer(raw))
        body = raw[at + len(self.trigger) :]
        if self.closing and self.closing in body:
            body = body[: body.index(self.closing)]
        if self.trigger != self.call_prefix and self.call_prefix.startswith(self.trigger):
            body = body[len(self.call_prefix) - len(self.trigger) :]
        try:
            data, _ = json.JSONDecoder(strict=False).raw_decode(
                (self.trigger if self.trigger.startswith("{") else "") + body.strip()
            )
        except json.JSONDecodeError as exc:
            raise ValueError(f"The tool call is not valid JSON ({exc.msg}).") from None
        if isinstance(data, list):
            data = data[0] if data else {}
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError('A tool call needs "name" with the name of a tool.')
        return Action(CALL, tool=data["name"], arguments=data.get(self.arguments_key, {}))

    def turn(
        self,
        backend: ChatBackend,
        messages: list[Message],
        tools: Sequence[Tool],
        settings: GenerationSettings,
        *,
        allow_tools: bool,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        # A turn that may only answer is not shown the tools, and reads what its calls found
        # as plain text with the question: shown tools or its own calls, the 0.5B model
        # calls again (and, held to text, writes '>').
        specs = self.specs(tools) if allow_tools else None
        if not allow_tools and _has_tool_results(messages):
            messages = results_as_text(messages)
        stop = _Either(cancel)
        watch = _Trigger(
            (() if self.at_start else (self.trigger,))
            + tuple(
                f'{{"name":{space}"{t.name}"'
                for t in (tools if self.bare_calls_anywhere else ())
                for space in (" ", "")
            ),
            ((self.trigger,) if self.at_start else ()) + self.loose_starts,
            on_text,
        )

        def on_piece(piece: str) -> None:
            if watch.feed(piece):
                stop.set()

        # A turn that may only answer is held to plain text (where the backend can).
        first = backend.chat(
            messages,
            settings,
            on_text=on_piece,
            cancel=stop,
            tools=specs,
            text_only=bool(tools) and not allow_tools,
        )
        if watch.fired < 0:
            watch.flush()
            text = _clean_answer(first.text)
            cancelled = first.cancelled
            return Reply(
                None if cancelled else Action(FINAL, answer=text),
                raw=first.text,
                results=[first],
                cancelled=cancelled,
                truncated=_truncated(first),
            )
        before = watch.text[: watch.fired]
        before = before if before.strip() else ""
        if cancel is not None and cancel.is_set():
            return Reply(None, raw=watch.text, results=[first], cancelled=True)
        if not allow_tools or not tools:
            # It may only answer now, but started a call: what it said before the call is
            # the answer (the agent says what was found when that is nothing).
            said = _clean_answer(before)
            said = said if _has_word(said) else ""
            return Reply(Action(FINAL, answer=said), raw=before, results=[first])
        second = backend.chat(
            messages,
            settings,
            response_schema=self.call_schema(tools),
            cancel=cancel,
            tools=specs,
            prefix=before + self.call_prefix,
        )
        raw = before + self.call_prefix + second.text + self.closing
        if second.cancelled:
            return Reply(None, raw=raw, results=[first, second], cancelled=True)
        try:
            action = self.parse(raw)
        except ValueError as exc:
            return Reply(None, raw=raw, results=[first, second], error=str(exc))
        return Reply(action, raw=raw, results=[first, second])

    def call_messages(
        self, raw: str, tool: str, arguments: Any, observation: str, index: int
    ) -> list[Message]:
        """What goes back into the conversation after a call: the call and its result."""
        at = raw.find(self.trigger)
        before = raw[:at].strip() if at > 0 else ""
        call_id = _call_id(index)
        return [
            {
                "role": "assistant",
                "content": before,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool, "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "name": tool, "tool_call_id": call_id, "content": observation},
        ]

    def mistake_messages(self, raw: str, error: str) -> list[Message]:
        return [
            {"role": "assistant", "content": raw},
            {"role": "user", "content": error},
        ]


def _has_tool_results(messages: Sequence[Message]) -> bool:
    return any(m.get("role") == "tool" for m in messages)


def results_as_text(messages: Sequence[Message]) -> list[Message]:
    """The conversation with this run's native tool calls folded into its question.

    Earlier turns stay as they are; the question (the last user message before the first
    call, less any plans of similar tasks) gets what the calls returned written after it, as
    results (no tool names, no call JSON: the 0.5B model copied those into its answer; with
    the results first, it explained how to do what had been done), and the calls and any
    format mistakes are left out.
    """
    first_call = next(
        (i for i, m in enumerate(messages) if m.get("role") == "tool" or m.get("tool_calls")),
        len(messages),
    )
    asked = max((i for i in range(first_call) if messages[i].get("role") == "user"), default=-1)
    if asked < 0:
        return list(messages)
    found: list[str] = []
    # The plans of similar tasks were for choosing calls; the calls are done. Left in, the
    # 0.5B model retold them ("The task that worked for similar tasks before was ...").
    question = "\n\n".join(
        part
        for part in str(messages[asked]["content"]).split("\n\n")
        if not part.startswith(GUIDANCE_HEADER)
    )
    for message in messages[asked + 1 :]:
        result = str(message.get("content") or "").strip()
        if message.get("role") == "tool" and result not in found:  # a repeat: once
            found.append(result)
    folded = question + f"\n\n{FACTS_HEADER}\n" + "\n\n".join(found)
    return [*messages[:asked], {"role": "user", "content": folded}]


FACTS_HEADER = "Done for this request, with these results:"
GUIDANCE_HEADER = "Plans that worked for similar tasks before"  # prompts/workflows.txt


# What starts a decision-like JSON object anywhere in an answer.
DECISION_STARTS = ('{"tool"', '{ "tool"', '{"name"', '{ "name"')


@dataclass(frozen=True)
class DecideThenAnswer:
    """For templates without tools: a constrained decision, then the answer as free text."""

    name: str = "decide"
    native = False

    def system_tools_text(self, tools: Sequence[Tool]) -> str:
        if not tools:
            return ""
        lines = ["Tools you can use when they help:"]
        for t in tools:
            args = json.dumps(t.parameters.get("properties", {}), separators=(",", ":"))
            lines.append(f"- {t.name}: {t.description} Arguments: {args}")
        return "\n".join(lines)

    def specs(self, tools: Sequence[Tool]) -> list[ToolSpec] | None:
        return None

    def decision_schema(self, tools: Sequence[Tool]) -> dict[str, Any]:
        none = {
            "type": "object",
            "properties": {"tool": {"const": "none"}},
            "required": ["tool"],
            "additionalProperties": False,
        }
        options = [
            {
                "type": "object",
                "properties": {"tool": {"const": t.name}, "arguments": t.parameters},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            for t in tools
        ]
        return {"anyOf": [none, *options]}

    def descriptor(self, tools: Sequence[Tool], allow_tools: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.name, "answer": "free text"}
        if allow_tools and tools:
            out["decision"] = self.decision_schema(tools)
        return out

    def render_call(self, tool: str, arguments: Any, before: str = "") -> str:
        return json.dumps({"tool": tool, "arguments": arguments}, ensure_ascii=False)

    def parse(self, raw: str, allow_tools: bool = True) -> Action:
        """The action in ``raw``: a decision, then the answer; without a decision (a turn
        that could only answer) all of ``raw`` is the answer, JSON-looking or not."""
        text = raw.lstrip()
        if not allow_tools or not text.startswith("{"):
            return Action(FINAL, answer=_clean_answer(raw))
        try:
            data, end = json.JSONDecoder(strict=False).raw_decode(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"The decision is not valid JSON ({exc.msg}).") from None
        if not isinstance(data, dict):
            raise ValueError("The decision must be a JSON object.")
        tool = data.get("tool")
        if tool == "none" or tool is None:
            return Action(FINAL, answer=_clean_answer(text[end:]))
        if not isinstance(tool, str):
            raise ValueError('A decision needs "tool" with the name of a tool, or "none".')
        return Action(CALL, tool=tool, arguments=data.get("arguments", {}))

    def turn(
        self,
        backend: ChatBackend,
        messages: list[Message],
        tools: Sequence[Tool],
        settings: GenerationSettings,
        *,
        allow_tools: bool,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        results: list[ChatResult] = []
        decision = ""
        if allow_tools and tools:
            short = GenerationSettings(**{**settings.to_dict(), "max_tokens": 256})
            decided = backend.chat(
                messages, short, response_schema=self.decision_schema(tools), cancel=cancel
            )
            results.append(decided)
            if decided.cancelled:
                return Reply(None, raw=decided.text, results=results, cancelled=True)
            try:
                action = self.parse(decided.text)
            except ValueError as exc:
                return Reply(None, raw=decided.text, results=results, error=str(exc))
            if action.kind == CALL:
                return Reply(action, raw=decided.text, results=results)
            decision = json.dumps({"tool": "none"}) + "\n"
        # The answer is free text, but a small model may write the decision's JSON again
        # (SmolLM2 did, through a server): what could start one is held back, and once one
        # starts the answer ends there, so no JSON ever reaches the person.
        watch = _Trigger(DECISION_STARTS, ("{", "```"), on_text)
        stop = _Either(cancel)
        answer = backend.chat(
            messages,
            settings,
            on_text=lambda piece: stop.set() if watch.feed(piece) else None,
            cancel=stop,
            text_only=bool(tools),
        )
        results.append(answer)
        cancelled = cancel is not None and cancel.is_set()
        if watch.fired < 0:
            watch.flush()
            said = answer.text
        else:
            said = watch.text[: watch.fired]
            said = said if _has_word(said) else ""
        return Reply(
            None if cancelled else Action(FINAL, answer=_clean_answer(said)),
            raw=decision + said,
            results=results,
            cancelled=cancelled,
            truncated=watch.fired < 0 and _truncated(answer),
        )

    def call_messages(
        self, raw: str, tool: str, arguments: Any, observation: str, index: int
    ) -> list[Message]:
        return [
            {"role": "assistant", "content": self.render_call(tool, arguments)},
            {"role": "user", "content": f"Result of {tool}:\n{observation}"},
        ]

    def mistake_messages(self, raw: str, error: str) -> list[Message]:
        return [{"role": "assistant", "content": raw}, {"role": "user", "content": error}]


ConversationProtocol = NativeToolCalls | DecideThenAnswer

HERMES = NativeToolCalls(
    "hermes",
    trigger="<tool_call>",
    call_prefix="<tool_call>\n",
    at_start=False,
    wrap_list=False,
    closing="\n</tool_call>",
    loose_starts=('{"name"', '```json\n{"name"', '```json\n{\n  "name"', '```\n{"name"'),
    bare_calls_anywhere=True,
)
MISTRAL = NativeToolCalls(
    "mistral",
    trigger="[TOOL_CALLS]",
    call_prefix="[TOOL_CALLS]",
    at_start=False,
    wrap_list=True,
)
LLAMA3 = NativeToolCalls(
    "llama3",
    trigger='{"',
    call_prefix="",
    at_start=True,
    wrap_list=False,
    arguments_key="parameters",
)
DECIDE = DecideThenAnswer()
PROTOCOLS: dict[str, ConversationProtocol] = {p.name: p for p in (HERMES, MISTRAL, LLAMA3, DECIDE)}


def protocol_for(template: str, choice: str = "auto") -> ConversationProtocol:
    """The protocol for a chat template (``choice`` overrides: a name from PROTOCOLS)."""
    if choice and choice != "auto":
        if choice not in PROTOCOLS:
            raise UnknownProtocolError(
                f"Unknown conversation protocol {choice!r}; one of auto, {', '.join(PROTOCOLS)}."
            )
        return PROTOCOLS[choice]
    text = template or ""
    if "tools" in text:
        if "<tool_call>" in text:
            return HERMES
        if "[TOOL_CALLS]" in text:
            return MISTRAL
        if "<|python_tag|>" in text or "ipython" in text:
            return LLAMA3
    return DECIDE


def parse_raw(raw: str) -> Action:
    """The action in any recorded raw output: today's protocols and the JSON actions of
    traces recorded before them (``{"action": "final_answer", "answer": ...}``)."""
    text = raw.lstrip()
    if text.startswith('{"action"'):
        from agent_core.actions import parse_action

        return parse_action(text)
    for protocol in (HERMES, MISTRAL):
        if protocol.trigger in raw:
            return protocol.parse(raw)
    if text.startswith('{"tool"'):
        return DECIDE.parse(raw)
    if text.startswith('{"name"'):
        return LLAMA3.parse(raw)
    return Action(FINAL, answer=_clean_answer(raw))


_STRAY = re.compile(r"</?tool_call>|</?tool_response>|<\|im_(?:start|end)\|>|<\|eot_id\|>")


_CALL_START = re.compile(r'\{\s*"(?:name|tool)"\s*:')


def _clean_answer(text: str) -> str:
    """The answer as a person should read it: no stray protocol tags, and no tool call a
    small model wrote into its answer as JSON (``{"name": ..., "arguments": ...}``)."""
    text = _STRAY.sub("", text)
    decoder = json.JSONDecoder(strict=False)
    removed = False
    while match := _CALL_START.search(text):
        try:
            data, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            end = len(text)  # a call cut off mid-way: nothing after it is an answer
            data = {"arguments": None}
        call_like = isinstance(data, dict) and (
            "tool" in data or {"arguments", "parameters"} & data.keys()
        )
        if not call_like:
            break  # JSON the person asked for, not a call
        text = text[: match.start()] + text[end:]
        removed = True
    # What a removed call leaves behind: the ">" or code fence a model put around it.
    return text.strip().strip(">`").strip() if removed else text.strip()
