"""``ChatBackend`` for an OpenAI-compatible server the user runs (llama.cpp's server,
llama-cpp-python's server, vLLM ...). The API key comes from the OS keychain."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from models.chat import ChatResult, GenerationSettings, Message, TextCallback
from models.errors import ContextTooSmallError, ServerError, ServerUnreachableError
from models.gguf_info import ModelInfo

# Servers disagree on how to ask for schema-constrained JSON; we try these in order and
# remember the first one a server accepts.
_RESPONSE_FORMATS = (
    lambda schema: {"type": "json_schema", "json_schema": {"name": "action", "schema": schema}},
    lambda schema: {"type": "json_object", "schema": schema},
)
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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0))
        self.model = model or self._first_model()
        self._context_size = context_size
        self._format_index = 0
        self._tokenizer_index: int | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"Cannot reach the model server at {url}: {exc}") from exc
        return response

    @staticmethod
    def _error(response: httpx.Response) -> ServerError:
        try:
            detail = response.json()
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = response.text[:500]
        return ServerError(
            f"The model server answered {response.status_code}: {detail}",
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

    def count_tokens(self, text: str) -> int:
        order = (
            [self._tokenizer_index]
            if self._tokenizer_index is not None
            else range(len(_TOKENIZERS))
        )
        for index in order:
            path, body, field = _TOKENIZERS[index]
            response = self._request("POST", f"{self._root}{path}", json=body(text, self.model))
            if response.status_code == 200:
                value = response.json().get(field)
                if value is not None:
                    self._tokenizer_index = index
                    return value if isinstance(value, int) else len(value)
        # No tokenize endpoint: a conservative estimate (about 3 characters a token).
        self._tokenizer_index = None
        return len(text) // 3 + 1

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        # Per message, the role markers of common chat templates cost about four tokens.
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def chat(
        self,
        messages: list[Message],
        settings: GenerationSettings,
        *,
        response_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ChatResult:
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
        for attempt in range(self._format_index, len(_RESPONSE_FORMATS)):
            if response_schema is not None:
                body["response_format"] = _RESPONSE_FORMATS[attempt](response_schema)
            try:
                result = self._stream(body, on_text, cancel)
            except _FormatRejected:
                if attempt + 1 == len(_RESPONSE_FORMATS):
                    raise ServerError(
                        "The server refuses schema-constrained JSON output.",
                        hint="Use llama.cpp's server, llama-cpp-python's server or vLLM.",
                    ) from None
                continue
            self._format_index = attempt
            return result
        raise AssertionError("unreachable")

    def _stream(
        self, body: dict[str, Any], on_text: TextCallback | None, cancel: threading.Event | None
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
                    # (llama-cpp-python's server answers 500 for a request it cannot validate)
                    if "response_format" in text and "response_format" in body:
                        raise _FormatRejected()
                    if "context" in text.lower() and "exceed" in text.lower():
                        raise ContextTooSmallError(
                            f"The server says the prompt is too long: {text}"
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
                    chunk = json.loads(data)
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
            raise ServerUnreachableError(f"Lost the model server at {url}: {exc}") from exc
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
