"""``ChatBackend`` on llama-cpp-python: a local GGUF, CPU or GPU offload.

We format the prompt ourselves with the chat template from the GGUF metadata (the same
Jinja2 formatter llama-cpp-python uses), tokenize it once, and stream completion tokens. That
gives the exact prompt for the trace, an exact token count before generating (so a prompt
that cannot fit is refused with a clear error instead of failing inside llama.cpp), and
keeps llama.cpp's prefix cache warm across turns: an unchanged prompt prefix is not re-read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.chat import ChatResult, GenerationSettings, Message, TextCallback, ToolSpec
from models.errors import (
    ContextTooSmallError,
    JackdawError,
    ModelLoadError,
    UnsupportedArchitectureError,
)
from models.gguf_info import ModelInfo, model_info
from models.prompt_state import MIN_TOKENS as MIN_STATE_TOKENS
from models.prompt_state import PromptStates, model_identity, shared_prefix

log = logging.getLogger("jackdaw.models")

# A reply needs room: refuse prompts that leave fewer tokens than this for the answer.
MIN_REPLY_TOKENS = 16
# The prompt is read in slices this long, checking for Stop between them: a slice takes
# well under 0.5 s on two CPU cores even for a 1.5B model.
PREFILL_SLICE = 48
# Used when a GGUF carries no chat template (rare for instruct models): ChatML.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_cpu_fallback_noted = False


# An answer that cannot start like a tool call (JSON, a tag, a code fence), for turns that may
# only answer.
TEXT_GRAMMAR = r"""root ::= [^{<`\[\x00-\x20] [^\x00]*"""

# Bounds above this become repetitions llama.cpp's grammar parser cannot take.
MAX_GRAMMAR_REPEAT = 1000
_REPEAT_KEYS = ("maxLength", "minLength", "maxItems", "minItems")


def grammar_safe(schema: Any) -> Any:
    """``schema`` without repetition bounds too large for a llama.cpp grammar."""
    if isinstance(schema, dict):
        return {
            k: grammar_safe(v)
            for k, v in schema.items()
            if not (k in _REPEAT_KEYS and isinstance(v, int) and v > MAX_GRAMMAR_REPEAT)
        }
    if isinstance(schema, list):
        return [grammar_safe(v) for v in schema]
    return schema


class UnsupportedSchemaError(JackdawError):
    hint = "Simplify the tool's argument schema (e.g. drop large maxLength/maxItems bounds)."


def default_threads() -> int:
    # llama-cpp-python's default is half the CPUs; on small machines all of them is faster.
    return max(1, min(os.cpu_count() or 1, 8))


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def resolve_gpu_layers(setting: str | int) -> int:
    """Map the config value (auto | all | 0 | N) to llama.cpp's n_gpu_layers.

    Without GPU support in this build (or no GPU found), fall back to the CPU; say so once
    when the user asked for offload explicitly (``auto`` just means "if there is one").
    """
    global _cpu_fallback_noted
    text = str(setting).strip().lower()
    if text in ("0", "cpu", "none"):
        return 0
    if not gpu_offload_supported():
        if text != "auto" and not _cpu_fallback_noted:
            log.warning(
                "GPU offload is not available (this llama-cpp-python build has no GPU support, "
                "or no GPU was found): running on the CPU."
            )
            _cpu_fallback_noted = True
        return 0
    if text in ("auto", "all", "-1"):
        return -1
    try:
        return max(0, int(text))
    except ValueError as exc:
        raise ModelLoadError(
            f"gpu_layers should be auto, all, 0 or a number, not {setting!r}",
            hint="Fix [model] gpu_layers in config.toml.",
        ) from exc


class LlamaCppBackend:
    def __init__(
        self,
        path: Path | str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 0,
        gpu_layers: str | int = "auto",
        info: ModelInfo | None = None,
        state_dir: Path | None = None,
        state_seeds: Sequence[Path] = (),
    ) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._info = info or model_info(path)  # validates the file before llama.cpp sees it
        self.gpu_layers = resolve_gpu_layers(gpu_layers)
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or default_threads(),
                n_gpu_layers=self.gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise self._load_error(exc) from exc
        # Saved states of the prompt's stable start, so a new process need not read it again.
        self._states = (
            PromptStates(state_dir, model_identity(path, n_ctx), seeds=state_seeds)
            if state_dir is not None
            else None
        )
        self._lock = threading.Lock()  # one inference lane: llama.cpp contexts are not thread-safe
        self._grammars: dict[str, Any] = {}
        template = self._llama.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        self._template = template
        eos_id, bos_id = self._llama.token_eos(), self._llama.token_bos()
        self._eos = self._llama._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = self._llama._model.token_get_text(bos_id) if bos_id != -1 else ""
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._eos, bos_token=bos, add_generation_prompt=True
        )

    def _load_error(self, exc: Exception) -> Exception:
        arch = self._info.architecture
        return UnsupportedArchitectureError(
            f"llama.cpp could not load {self._info.path} (architecture {arch!r}): {exc}. "
            "The file itself is complete, so this llama.cpp build most likely does not "
            f"support the {arch!r} architecture, or the model needs more memory than is free."
        )

    # -- ChatBackend -------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def context_size(self) -> int:
        return int(self._llama.n_ctx())

    @property
    def chat_template(self) -> str:
        return self._template

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def format_prompt(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, prefix: str = ""
    ) -> tuple[str, list[int], list[str]]:
        formatted = self._formatter(messages=messages, tools=tools or None)  # type: ignore[arg-type]
        prompt = formatted.prompt + prefix
        tokens = self._llama.tokenize(
            prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
        return prompt, tokens, [s for s in stop if s]

    def count_prompt_tokens(
        self, messages: list[Message], tools: list[ToolSpec] | None = None
    ) -> int:
        return len(self.format_prompt(messages, tools)[1])

    def _prefill(self, tokens: list[int], cancel: threading.Event | None, stable: int = 0) -> int:
        """Read the prompt (all but its last token) in short slices, checking ``cancel``
        between them, so Stop acts within a fraction of a second even on a long prompt.

        What llama.cpp already holds of the prompt (the shared prefix) is not read again. The
        first ``stable`` tokens (system prompt and tool specs) are loaded from a saved state
        when there is one, and saved once read. Returns how many prompt tokens were not read
        (held or loaded), or -1 when cancelled.
        """
        llama = self._llama
        end = len(tokens) - 1  # create_completion reads the last token itself
        shared = min(shared_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens), end)
        llama.n_tokens = shared  # eval() drops the rest of the KV cache from here
        reused = shared
        save_at = 0
        if self._states is not None and shared < stable <= end:
            saved = self._states.has(tokens[:stable])
            if saved and self._states.load(llama._ctx.ctx, tokens[:stable]):
                llama.input_ids[:stable] = tokens[:stable]
                llama.n_tokens = shared = reused = stable
            else:
                if saved:  # a failed load may have cleared what was held
                    llama.n_tokens = shared = reused = 0
                save_at = stable
        start = shared
        while start < end:
            if cancel is not None and cancel.is_set():
                return -1
            stop = min(start + PREFILL_SLICE, save_at if start < save_at else end, end)
            llama.eval(tokens[start:stop])
            start = stop
            if start == save_at and self._states is not None:
                self._states.save(llama._ctx.ctx, tokens[:save_at])
        return -1 if cancel is not None and cancel.is_set() else reused

    def prepare(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
        """Read the stable start of this prompt (its system message) so its state is saved
        for later runs, without generating. Returns how many of its tokens were already held
        or saved (0: it was read now)."""
        tokens = self.format_prompt(messages, tools)[1]
        stable = self._stable_length(messages, tools, tokens)
        if not stable:
            return 0
        with self._lock:
            return max(0, self._prefill(tokens[: stable + 1], None, stable))

    def _stable_length(
        self, messages: list[Message], tools: list[ToolSpec] | None, tokens: list[int]
    ) -> int:
        """How many leading tokens of the prompt hold only the system message (with tools):
        the part every question shares, worth a saved state."""
        if self._states is None or not messages or messages[0].get("role") != "system":
            return 0
        system_only = self.format_prompt(messages[:1], tools)[1]
        stable = shared_prefix(system_only, tokens)
        return stable if stable >= MIN_STATE_TOKENS else 0

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """The grammar for ``schema``, checked by llama.cpp once before it is ever used.

        llama.cpp refuses grammars with large repetition counts (a ``maxLength`` of a few
        thousand) and crashes outright on larger ones, so such bounds are left out of the
        grammar (the tool's JSON Schema validation still enforces them), and what is left is
        checked by llama.cpp before use: sampling with a refused grammar would crash.
        """
        import llama_cpp
        from llama_cpp import LlamaGrammar

        from models.json_grammar import json_schema_grammar

        # Properties keep their order: a call names its tool before its arguments, so the
        # model chooses the tool first (sorted keys would put "arguments" first).
        key = json.dumps(grammar_safe(schema))
        if key not in self._grammars:
            try:
                # Not LlamaGrammar.from_json_schema: its strings take raw newlines (not JSON).
                gbnf = json_schema_grammar(json.loads(key))
                grammar = LlamaGrammar.from_string(gbnf, verbose=False)
            except (ValueError, RecursionError) as exc:
                raise UnsupportedSchemaError(
                    f"Cannot turn this JSON Schema into a grammar: {exc}"
                ) from exc
            sampler = llama_cpp.llama_sampler_init_grammar(
                self._llama._model.vocab, grammar._grammar.encode("utf-8"), b"root"
            )
            if not sampler:
                raise UnsupportedSchemaError(
                    "llama.cpp refused the grammar for this JSON Schema (too large or unsupported)."
                )
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[key] = grammar
        return self._grammars[key]

    def _text_grammar(self) -> Any:
        """Plain text that does not start like a tool call (JSON, a tag, a code fence)."""
        from llama_cpp import LlamaGrammar

        if "text" not in self._grammars:
            self._grammars["text"] = LlamaGrammar.from_string(TEXT_GRAMMAR, verbose=False)
        return self._grammars["text"]

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
        prompt, tokens, stop = self.format_prompt(messages, tools, prefix)
        room = self.context_size - len(tokens)
        if room < MIN_REPLY_TOKENS:
            raise ContextTooSmallError(
                f"The prompt needs {len(tokens)} tokens but the model's context holds "
                f"{self.context_size} (and the answer needs room too)."
            )
        if response_schema:
            grammar = self._grammar(response_schema)
        elif text_only:
            grammar = self._text_grammar()
        else:
            grammar = None
        stable = self._stable_length(messages, tools, tokens)
        with self._lock:
            started = time.perf_counter()
            first_token_ms = 0.0
            pieces: list[str] = []
            n_completion = 0
            finish = "stop"
            reused = self._prefill(tokens, cancel, stable)
            if reused < 0:
                return ChatResult(
                    text="",
                    prompt_tokens=len(tokens),
                    completion_tokens=0,
                    finish_reason="cancelled",
                    duration_ms=(time.perf_counter() - started) * 1000,
                    first_token_ms=0.0,
                    prompt=prompt,
                )
            stream = self._llama.create_completion(
                tokens,
                max_tokens=min(settings.max_tokens, room),
                temperature=settings.temperature,
                top_p=settings.top_p,
                top_k=settings.top_k,
                repeat_penalty=settings.repeat_penalty,
                seed=settings.seed,
                stop=stop,
                grammar=grammar,
                stream=True,
            )
            try:
                for chunk in stream:
                    if cancel is not None and cancel.is_set():
                        finish = "cancelled"
                        break
                    choice: dict[str, Any] = chunk["choices"][0]  # type: ignore[index,assignment]
                    piece: str = choice["text"]
                    if not first_token_ms:
                        first_token_ms = (time.perf_counter() - started) * 1000
                    n_completion += 1
                    if piece:
                        pieces.append(piece)
                        if on_text is not None:
                            on_text(piece)
                    finish = choice.get("finish_reason") or finish
            finally:
                stream.close()  # type: ignore[union-attr]
            duration_ms = (time.perf_counter() - started) * 1000
        text = "".join(pieces)
        return ChatResult(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=n_completion,
            finish_reason=finish,
            duration_ms=duration_ms,
            first_token_ms=first_token_ms or duration_ms,
            prompt=prompt,
            reused_prompt_tokens=reused,
        )

    def close(self) -> None:
        llama = getattr(self, "_llama", None)
        if llama is not None:
            with self._lock:  # never free the model under a running generation
                llama.close()
                self._llama = None  # type: ignore[assignment]
