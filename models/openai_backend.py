"""``ChatBackend`` for an OpenAI-compatible server the user runs (llama.cpp's server,
llama-cpp-python's server, vLLM ...). The API key comes from the OS keychain."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from models.chat import ChatResult, GenerationSettings, Message, TextCallback, ToolSpec
from models.errors import ContextTooSmallError, ServerError, ServerUnreachableError
from models.gguf_info import ModelInfo
from models.json_grammar import json_schema_grammar
from models.redact import redact_text

log = logging.getLogger("jackdaw.models")


# Servers disagree on how to ask for schema-constrained JSON, and on how well they enforce it.
# We try these in order and remember the first one a server accepts:
# 1. OpenAI's ``json_schema``: llama.cpp's llama-server turns it into a grammar with its own
#    (correct) converter; vLLM and others enforce it too. llama-cpp-python's server (0.3.x)
#    refuses it: its ``response_format`` type is only "text" or "json_object".
# 2. A grammar (GBNF) of our own making: llama-cpp-python's server and llama-server take a
#    ``grammar`` field. Not ``json_object`` + ``schema`` there: llama-cpp-python converts that
#    schema with a string rule that lets raw newlines into strings (invalid JSON).
# 3. ``json_object`` + ``schema``: the legacy form (other llama.cpp forks, Together.ai).
def _json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": schema},
        }
    }


def _grammar_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"grammar": json_schema_grammar(schema)}


def _json_object_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"response_format": {"type": "json_object", "schema": schema}}


_SCHEMA_FORMATS: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = (
    _json_schema_format,
    _grammar_format,
    _json_object_format,
)
# Without a tokenize endpoint, tokens are estimated piece by piece: a run of ASCII letters
# costs a token per 6 letters (rounded up), a run of punctuation one per 3, a digit or a line
# break one, any other character two. Against SmolLM2's tokenizer that comes out 4-8% high on
# English prose, Python and JSON Schemas, 3% high on Chinese, 4% low on the README (commands,
# paths) and 25% low on German (an English-centric tokenizer). Blocks are budgeted with that
# central estimate, so a prompt that fits its budgets still does; the whole prompt, which must
# fit the server's context, is counted with a safety margin on top.
_PIECES = re.compile(r"[A-Za-z]+|[0-9]|[^\sA-Za-z0-9\x80-\U0010ffff]+|[\x80-\U0010ffff]|\s+")
ESTIMATE_MARGIN = 1.25
# Tokenize endpoints: (path, request body, how to read the count).
_TOKENIZERS = (
    ("/extras/tokenize/count", lambda text, model: {"input": text, "model": model}, "count"),
    ("/tokenize", lambda text, model: {"model": model, "prompt": text}, "count"),
    ("/tokenize", lambda text, model: {"content": text}, "tokens"),
)


class OpenAICompatibleBackend:
    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        context_size: int = 4096,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._root = self.base_url.removesuffix("/v1")
        self._api_key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0))
        self.model = model or self._first_model()
        self._context_size = context_size
        self._format_index = 0
        self._tokenizer_index: int | None = None  # None: not probed yet; -1: none, estimate

    # -- plumbing ----------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        """Every text a server sent (or that names it) passes here before anyone stores or
        shows it: a server may echo the Authorization header, the key itself, or a URL with
        a password in it. The same rules as the audit log, plus the key we actually sent."""
        return redact_text(text, [self._api_key])

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(
                self._redact(f"Cannot reach the model server at {url}: {exc}")
            ) from None
        return response

    def _error(self, response: httpx.Response) -> ServerError:
        try:
            detail = response.json()
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = response.text[:500]
        return ServerError(
            self._redact(f"The model server answered {response.status_code}: {detail}"),
            hint="Check the server's log, the model name in config.toml [server] model, "
            "and the API key (jackdaw stores it in the OS keychain).",
        )

    def _first_model(self) -> str:
        response = self._request("GET", f"{self.base_url}/models")
        if response.status_code != 200:
            raise self._error(response)
        models = response.json().get("data") or []
        if not models:
            raise ServerError("The server lists no models.", hint="Load a model on the server.")
        return str(models[0]["id"])

    # -- ChatBackend -------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            path=self.base_url,
            name=self.model,
            architecture="remote",
            parameters=0,
            quantization="unknown",
            context_length=self._context_size,
            file_size=0,
            sha256="",
        )

    @property
    def context_size(self) -> int:
        return self._context_size

    @property
    def token_counts_estimated(self) -> bool:
        """True once we know the server has no tokenize endpoint we can use."""
        return self._tokenizer_index == -1

    def count_tokens(self, text: str) -> int:
        if self._tokenizer_index == -1:
            return estimate_tokens(text)
        order = (
            [self._tokenizer_index]
            if self._tokenizer_index is not None
            else range(len(_TOKENIZERS))
        )
        for index in order:
            path, body, field = _TOKENIZERS[index]
            response = self._request("POST", f"{self._root}{path}", json=body(text, self.model))
            if response.status_code == 200:
                try:
                    value = response.json().get(field)
                except (ValueError, AttributeError):
                    value = None
                if isinstance(value, (int, list)):
                    self._tokenizer_index = index
                    return value if isinstance(value, int) else len(value)
        if self._tokenizer_index is not None:  # it worked before: a passing hiccup
            return estimate_tokens(text)
        self._tokenizer_index = -1
        log.warning(
            "The model server at %s has no tokenize endpoint Jackdaw knows; token counts are "
            "estimates from now on (whole prompts with a %d%% margin).",
            self._redact(self.base_url),
            round((ESTIMATE_MARGIN - 1) * 100),
        )
        return estimate_tokens(text)

    @property
    def chat_template(self) -> str:
        """Unknown: the server applies it. The agent uses decide-then-answer here, which needs
        nothing of the template (and no ``tools`` in requests)."""
        return ""

    def count_prompt_tokens(
        self, messages: list[Message], tools: list[ToolSpec] | None = None
    ) -> int:
        # Per message, the role markers of common chat templates cost about four tokens.
        # (An assistant message that calls a tool may have no content.)
        content = sum(self.count_tokens(str(m.get("content") or "")) for m in messages)
        if self.token_counts_estimated:
            content = math.ceil(content * ESTIMATE_MARGIN)
        return content + 4 * len(messages)

    def chat(
        self,
        messages: list[Message],
        settings: GenerationSettings,
        *,
        response_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        tools: list[ToolSpec] | None = None,
        prefix: str = "",
        text_only: bool = False,
    ) -> ChatResult:
        """``tools`` and ``text_only`` are not sent (the agent's decide-then-answer protocol
        does not use them with a server); a ``prefix`` goes as a last assistant message,
        which llama.cpp's server continues."""
        if prefix:
            messages = [*messages, {"role": "assistant", "content": prefix}]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "max_tokens": settings.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if response_schema is None:
            return self._stream(body, on_text, cancel, constrained_by=())
        # The output is not trusted even so: a server may ignore what it is asked, or enforce
        # it badly. The agent reads it as a model's reply, and a reply that does not parse is a
        # mistake of the model that is fed back, never a crash.
        for attempt in range(self._format_index, len(_SCHEMA_FORMATS)):
            extra = _SCHEMA_FORMATS[attempt](response_schema)
            try:
                result = self._stream(body | extra, on_text, cancel, constrained_by=tuple(extra))
            except _FormatRejected:
                continue
            self._format_index = attempt
            return result
        raise ServerError(
            "The server refuses schema-constrained JSON output.",
            hint="Use llama.cpp's llama-server, llama-cpp-python's server or vLLM.",
        )

    def _stream(
        self,
        body: dict[str, Any],
        on_text: TextCallback | None,
        cancel: threading.Event | None,
        *,
        constrained_by: tuple[str, ...],
    ) -> ChatResult:
        started = time.perf_counter()
        first_token_ms = 0.0
        pieces: list[str] = []
        usage: dict[str, int] = {}
        finish = "stop"
        url = f"{self.base_url}/chat/completions"
        try:
            with self._client.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    text = response.text
                    # A refusal names the field it refuses (llama-cpp-python's server answers
                    # 500 for a request it cannot validate, others 400 or 422).
                    if any(field in text for field in constrained_by):
                        raise _FormatRejected()
                    if "context" in text.lower() and "exceed" in text.lower():
                        raise ContextTooSmallError(
                            self._redact(f"The server says the prompt is too long: {text[:500]}")
                        )
                    raise self._error(response)
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        finish = "cancelled"
                        break
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError:
                        raise ServerError(
                            self._redact(f"The model server sent a broken stream: {data[:200]}"),
                            hint="Check the server's log; is base_url an OpenAI-compatible server?",
                        ) from None
                    if not isinstance(chunk, dict):
                        continue
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            if not first_token_ms:
                                first_token_ms = (time.perf_counter() - started) * 1000
                            pieces.append(piece)
                            if on_text is not None:
                                on_text(piece)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
        except httpx.TransportError as exc:
            raise ServerUnreachableError(
                self._redact(f"Lost the model server at {url}: {exc}")
            ) from None
        text = "".join(pieces)
        duration_ms = (time.perf_counter() - started) * 1000
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)) or len(pieces),
            finish_reason=finish,
            duration_ms=duration_ms,
            first_token_ms=first_token_ms or duration_ms,
        )

    def close(self) -> None:
        self._client.close()


class _FormatRejected(Exception):
    pass


def estimate_tokens(text: str) -> int:
    """An estimate of the tokens in ``text`` (see _PIECES)."""
    count = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        first = piece[0]
        if first == " " and piece == " ":
            continue  # a single space goes with the next word
        if first.isascii() and first.isalpha():
            count += math.ceil(len(piece) / 6)
        elif first.isspace() or first.isdigit() or not first.isascii():
            count += 1 if first.isascii() else 2
        else:
            count += math.ceil(len(piece) / 3)
    return count
