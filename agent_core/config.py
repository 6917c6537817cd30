"""Where Jackdaw keeps its files, and ``config.toml``.

All files live under one home folder: ``$JACKDAW_HOME`` when set (tests, portable use),
otherwise the platform's folders from platformdirs. The config is a tree of dataclasses;
unknown keys in the file are kept as they are (a newer version's settings survive an older
one), and saving is atomic (write a temp file, then rename).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from models.errors import JackdawError

APP_NAME = "jackdaw"


class ConfigError(JackdawError):
    hint = "Fix or delete config.toml (Jackdaw writes a fresh one with defaults)."


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @classmethod
    def from_env(cls) -> Paths:
        home = os.environ.get("JACKDAW_HOME")
        if home:
            root = Path(home).expanduser().resolve()
            return cls(config_dir=root, data_dir=root, cache_dir=root / "cache")
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def memory_db(self) -> Path:
        return self.data_dir / "memory.db"

    @property
    def knowledge_db(self) -> Path:
        return self.data_dir / "knowledge.db"

    @property
    def models_dir(self) -> Path:
        """Converted or cached model files (e.g. the embedding GGUF); can be rebuilt."""
        return self.data_dir / "models"

    @property
    def prompt_states_dir(self) -> Path:
        """The model's state after the stable start of the prompt; a cache, can be deleted."""
        return self.cache_dir / "prompt-states"


@dataclass
class ModelConfig:
    backend: str = "local"  # local | openai
    path: str = ""  # empty: the embedded default model
    n_ctx: int = 4096
    n_threads: int = 0  # 0: let llama.cpp choose
    gpu_layers: str = "auto"  # auto | all | 0 | a number
    search_folders: list[str] = field(default_factory=list)  # also searched by `models discover`
    temperature: float = 0.2
    seed: int = 42
    max_answer_tokens: int = 512


@dataclass
class ServerConfig:
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = ""
    api_key_name: str = ""  # the name under which the key is stored in the OS keyring
    timeout_s: float = 120.0


@dataclass
class AgentConfig:
    # How the model takes tools: auto (from its chat template), hermes, mistral, llama3, or
    # decide (a constrained decision, then a free-text answer: for templates without tools).
    protocol: str = "auto"
    max_steps: int = 6
    history_budget_tokens: int = 1024
    system_budget_tokens: int = 1024
    retrieval_budget_tokens: int = 768
    # A passage at least this similar to the question (cosine, all-MiniLM-L6-v2): the first
    # turn answers from the notes without tools; above 1 never. On the answers benchmark,
    # questions about the notes scored 0.22-0.79 (most over 0.45), general and arithmetic
    # questions 0.08-0.32.
    answer_from_notes_at: float = 0.45


@dataclass
class KnowledgeConfig:
    watched_folders: list[str] = field(default_factory=list)
    embedding_model: str = ""  # empty: the default all-MiniLM-L6-v2, converted once
    max_file_mb: float = 50.0  # text past this is indexed up to it ("truncated"); others skipped
    settle_seconds: float = 1.0
    reconcile_minutes: float = 30.0
    file_time_budget_s: float = 120.0  # one file may take this long per run; 0: no limit
    follow_links_outside: bool = False  # follow symlinks that lead out of a watched folder
    skip_generated: bool = True  # skip minified code, one-line data and encoded blobs


@dataclass
class ToolsConfig:
    notes_folder: str = ""  # empty: <data dir>/notes
    allowed_paths: list[str] = field(default_factory=list)
    confirm_timeout_s: float = 60.0
    tool_timeout_s: float = 30.0
    run_python_timeout_s: float = 10.0
    run_python_memory_mb: int = 512


@dataclass
class LearningConfig:
    refine_idle_minutes: float = 15.0
    refine_max_per_day: int = 1
    correction_similarity: float = 0.85  # at or above: the correction goes into the prompt
    correction_strong_similarity: float = 0.9  # at or above: answer with it, citing it
    # Below correction_similarity, down to this: a correction goes into the prompt when its
    # question is the nearest learnt one by anchored_fact_margin and the note the search
    # ranks first holds its answer's names and numbers (the same need, in other words).
    anchored_fact_similarity: float = 0.5
    anchored_fact_margin: float = 0.05
    # Below that, the nearest learnt fact at least this similar, by related_fact_margin, is
    # shown to the person beside the answer (not to the model): "You taught me ...".
    related_fact_similarity: float = 0.6
    related_fact_margin: float = 0.1
    # A model that judges whether a learnt fact below correction_similarity (down to
    # judged_fact_similarity; the judged_candidates nearest) answers the question: "auto" (Qwen2.5
    # Coder 1.5B when it is installed: `jackdaw models pull qwen2.5-coder-1.5b`), "chat" (the
    # chat model), "off", or a catalogue name or GGUF path. The default 0.5B cannot judge.
    judge_model: str = "auto"
    judged_fact_similarity: float = 0.45
    judged_candidates: int = 2
    recall_confirmed_answers: bool = True  # an up-rated answer counts as a correction does
    learn_experiences: bool = True  # learn scripts from successful runs as they happen
    experience_similarity: float = 0.75  # workflows of tasks this similar guide the model
    experience_dedup_similarity: float = 0.92
    replay_similarity: float = 0.85  # a task this similar may have a script's slots filled
    replay_fill_slots_with_model: bool = True  # by one small model call
    facts_budget_tokens: int = 256
    workflows_budget_tokens: int = 256
    lessons_dose: int = 5  # active lessons in a candidate prompt
    lessons_on_trial: int = 2  # candidate lessons tried in a candidate prompt
    exemplars_max: int = 4
    exemplars_budget_tokens: int = 256
    eval_max_tokens: int = 128  # per answer while scoring prompt versions


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path) -> Config:
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | None = None) -> Config:
        config = cls()
        unknown: dict[str, Any] = {}
        for key, value in data.items():
            section = getattr(config, key, None)
            if key == "unknown" or section is None or not isinstance(value, dict):
                unknown[key] = value
                continue
            known = {f.name: f for f in dataclasses.fields(section)}
            for name, item in value.items():
                if name not in known:
                    unknown.setdefault(key, {})[name] = item
                    continue
                expected = type(getattr(section, name))
                if expected is float and isinstance(item, int):
                    item = float(item)
                if expected is str and isinstance(item, int):
                    item = str(item)
                if not isinstance(item, expected):
                    where = f" in {source}" if source else ""
                    raise ConfigError(
                        f"[{key}] {name} should be a {expected.__name__}, not {item!r}{where}"
                    )
                setattr(section, name, item)
        config.unknown = unknown
        return config

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: dataclasses.asdict(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "unknown"
        }
        for key, value in self.unknown.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**value, **data[key]}
            else:
                data.setdefault(key, value)
        return data

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            tomli_w.dump(self.to_dict(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
