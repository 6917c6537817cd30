"""``jackdaw models list|discover|pull|use``: which chat models Jackdaw can run, the GGUFs the
user already has in other apps, the catalogue to download from, and switching between them
(saved in config.toml).

Registered under the ``models`` command of ``agent_core/cli.py`` (next to ``models info``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from agent_core.cli_output import print_json, write_out
from agent_core.services import Services
from models.assemble import find_part
from models.catalog import DEFAULT_MODEL, PACKAGED_MODELS, PackagedModel, find_packaged
from models.discovery import default_models_dir, resolve_chat_model
from models.download import (
    CATALOGUE,
    DownloadCancelled,
    DownloadProgress,
    catalogue_entry,
    downloaded_file,
    pull,
)
from models.errors import JackdawError, ModelNotFoundError
from models.fit import estimate_fit
from models.library import FoundModel, describe, discover


class ModelWontFitError(JackdawError):
    hint = "Pass --force to use it anyway, or choose a smaller model or context ([model] n_ctx)."


def register_model_actions(models: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = models.add_parser("list", help="the chat models Jackdaw can use, and which is on")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_models_list)

    found = models.add_parser(
        "discover", help="GGUFs you already have (LM Studio, GPT4All, Jan, Ollama, HF cache ...)"
    )
    found.add_argument(
        "--folder", action="append", default=[], metavar="PATH", help="also look here (repeatable)"
    )
    found.add_argument(
        "--remember", action="store_true", help="look in the --folder paths every time from now on"
    )
    found.add_argument("--all", action="store_true", help="also list projectors and broken files")
    found.add_argument("--json", action="store_true")
    found.set_defaults(handler=cmd_models_discover)

    pull = models.add_parser(
        "pull", help="download a model of the catalogue (resumable; checked by sha256)"
    )
    pull.add_argument("name", help="a catalogue name from `jackdaw models list`")
    pull.add_argument("--use", action="store_true", help="switch to it once downloaded")
    pull.add_argument("--json", action="store_true")
    pull.set_defaults(handler=cmd_models_pull)

    use = models.add_parser("use", help="switch the chat model (saved in config.toml)")
    use.add_argument(
        "model",
        help='a name from `models list` ("default", "smollm2-135m"), a label or name from '
        "`models discover` (e.g. llama3.2:3b), or the path of a GGUF",
    )
    use.add_argument("--force", action="store_true", help="even if it will not fit in memory")
    use.add_argument("--json", action="store_true")
    use.set_defaults(handler=cmd_models_use)

    warm = models.add_parser(
        "warm",
        help="read the start every prompt shares once and save the model's state after it "
        "(later runs load it instead of reading ~800 tokens again)",
    )
    warm.add_argument(
        "--into", type=Path, metavar="DIR", help="also copy the saved states here (install time)"
    )
    warm.set_defaults(handler=cmd_models_warm)


# -- list --------------------------------------------------------------------------------------
def _packaged_status(model: PackagedModel) -> str:
    installed = [find_part(part) is not None for part in model.parts]
    if not all(installed):
        return "not installed"
    if model.is_split and not (default_models_dir() / model.filename).is_file():
        return "installed (joined on first use)"
    return "ready"


def _active(services: Services) -> dict[str, Any]:
    configured = services.config.model.path.strip()
    packaged = find_packaged(configured)
    if services.config.model.backend != "local":
        return {"backend": services.config.model.backend, "name": services.config.server.model}
    if packaged is not None:
        return {"backend": "local", "name": packaged.name, "display_name": packaged.display_name}
    return {"backend": "local", "path": configured, "display_name": Path(configured).name}


def cmd_models_list(args: argparse.Namespace, services: Services) -> int:
    active = _active(services)
    rows: list[dict[str, Any]] = []
    for model in PACKAGED_MODELS:
        rows.append(
            {
                **model.to_dict(),
                "default": model is DEFAULT_MODEL,
                "active": active.get("name") == model.name,
                "status": _packaged_status(model),
            }
        )
    catalogue = [
        {
            **entry.to_dict(),
            "downloaded": downloaded_file(entry, services.paths.models_dir) is not None,
            "active": str(downloaded_file(entry, services.paths.models_dir) or "?")
            == active.get("path"),
        }
        for entry in CATALOGUE
    ]
    if args.json:
        print_json({"active": active, "models": rows, "catalogue": catalogue})
        return 0
    write_out("Installed with Jackdaw (speeds: tokens/s on 2 CPU cores):\n")
    for row in rows:
        mark = "*" if row["active"] else " "
        extra = " (default)" if row["default"] else ""
        write_out(
            f"{mark} {row['name']:<20} {row['display_name']}{extra}\n"
            f"  {'':<20} {row['size'] / 1e6:.0f} MB, ~{row['tok_s_2_cores']:.0f} tok/s, "
            f"{row['licence']}, {row['status']}\n"
        )
    write_out("\nCatalogue (`jackdaw models pull NAME`):\n")
    for item in catalogue:
        mark = "*" if item["active"] else " "
        state = "downloaded" if item["downloaded"] else "not downloaded"
        write_out(
            f"{mark} {item['name']:<20} {item['display_name']}\n"
            f"  {'':<20} {item['size'] / 1e9:.2f} GB, ~{item['ram_gb']:.1f} GB RAM, "
            f"~{item['tok_s_2_cores']:.0f} tok/s, {item['licence']}, {state}\n"
        )
    if "path" in active and not any(item["active"] for item in catalogue):
        write_out(f"\n* {active['display_name']}  ({active['path']})\n")
    elif active.get("backend") != "local":
        write_out(f"* a model server ({active['backend']}): {active.get('name') or 'its first'}\n")
    write_out(
        "\nOther GGUFs you have: `jackdaw models discover`; switch: `jackdaw models use NAME`.\n"
    )
    return 0


# -- discover ----------------------------------------------------------------------------------
def _search_folders(services: Services, extra: list[str]) -> list[str]:
    saved = list(getattr(services.config.model, "search_folders", []) or [])
    return saved + [f for f in extra if f not in saved]


def cmd_models_discover(args: argparse.Namespace, services: Services) -> int:
    if args.remember and args.folder:
        folders = getattr(services.config.model, "search_folders", None)
        if folders is None:
            raise JackdawError("This version cannot remember folders.", hint="Use --folder.")
        for folder in args.folder:
            path = str(Path(folder).expanduser().resolve())
            if path not in folders:
                folders.append(path)
        services.save_config()
    found = discover(_search_folders(services, args.folder))
    shown = [m for m in found if args.all or m.kind in ("chat", "embedding")]
    if args.json:
        print_json({"models": [m.to_dict() for m in shown]})
        return 0
    if not shown:
        write_out(
            "No GGUF files found in the folders of LM Studio, GPT4All, Jan, llama.cpp, the "
            "Hugging Face cache or Ollama. Add one with --folder PATH.\n"
        )
        return 0
    for model in shown:
        write_out(_describe_found(model) + "\n")
    write_out(f"\n{len(shown)} found. Use one with `jackdaw models use LABEL-OR-PATH`.\n")
    return 0


def _describe_found(model: FoundModel) -> str:
    if model.error:
        return f"- {model.label}  [{model.source}]\n    unreadable: {model.error}"
    params = model.parameters / 1e9
    size = f"{params:.1f}B" if params >= 1 else f"{model.parameters / 1e6:.0f}M"
    features = [
        model.architecture,
        f"{size} parameters",
        f"context {model.context_length}",
        f"{model.size / 1e9:.2f} GB",
        "tools" if model.tools else ("chat" if model.chat else "no chat template"),
    ]
    if model.kind != "chat":
        features.append(model.kind)
    return (
        f"- {model.name}  [{model.source}: {model.label}]\n"
        f"    {', '.join(features)}\n    {model.path}"
    )


# -- pull --------------------------------------------------------------------------------------
class _TerminalProgress:
    def __init__(self) -> None:
        self.shown = False

    def __call__(self, p: DownloadProgress) -> None:
        eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
        sys.stderr.write(
            f"\r{p.name}: {p.done_bytes / 1e6:.0f} of {p.total_bytes / 1e6:.0f} MB, "
            f"{p.bytes_per_s / 1e6:.1f} MB/s{eta}   "
        )
        sys.stderr.flush()
        self.shown = True


def cmd_models_pull(args: argparse.Namespace, services: Services) -> int:
    entry = catalogue_entry(args.name)
    report = _TerminalProgress()
    try:
        path = pull(entry, services.paths.models_dir, progress=report)
    except KeyboardInterrupt:
        raise DownloadCancelled(f"Download of {entry.display_name} stopped.") from None
    finally:
        if report.shown:
            sys.stderr.write("\n")
    fit = estimate_fit(path, services.config.model.n_ctx)
    if args.use:
        services.config.model.path = str(path)
        services.config.model.backend = "local"
        services.save_config()
    if args.json:
        print_json(
            {"path": str(path), "name": entry.display_name, "used": args.use, "fit": fit.to_dict()}
        )
    else:
        using = "Now using it." if args.use else f"Use it: jackdaw models use {entry.name}"
        write_out(f"Downloaded {entry.display_name} to {path} (sha256 checked).\n{using}\n")
        write_out(fit.describe() + "\n")
    return 0


# -- use ---------------------------------------------------------------------------------------
def _pick(services: Services, wanted: str) -> tuple[str, Path, str, int | None]:
    """(what to store in [model] path, the file, a human name, its size when split)."""
    packaged = find_packaged(wanted)
    if packaged is not None:
        return (
            "" if packaged is DEFAULT_MODEL else packaged.name,
            resolve_chat_model(packaged.name),
            packaged.display_name,
            None,
        )
    entry = next((e for e in CATALOGUE if e.name == wanted.strip().lower()), None)
    if entry is not None:
        file = downloaded_file(entry, services.paths.models_dir)
        if file is None:
            raise ModelNotFoundError(
                f"{entry.display_name} is not downloaded yet.",
                hint=f"Run `jackdaw models pull {entry.name} --use`.",
            )
        return str(file), file, entry.display_name, None
    path = Path(wanted).expanduser()
    if path.is_file():
        found = describe(path.resolve(), "file", path.name)
        return str(path.resolve()), path.resolve(), found.name, found.size
    matches = [
        m
        for m in discover(_search_folders(services, []))
        if m.usable and wanted in (m.label, m.name, Path(m.label).name)
    ]
    if len(matches) > 1:
        options = "; ".join(f"{m.label} ({m.source})" for m in matches)
        raise JackdawError(
            f"{wanted!r} names {len(matches)} models: {options}.", hint="Give the path instead."
        )
    if not matches:
        raise ModelNotFoundError(
            f"No model called {wanted!r}: not a name from `jackdaw models list`, not a file, "
            "and not a label from `jackdaw models discover`."
        )
    found = matches[0]
    return found.path, Path(found.path), found.name, found.size


def cmd_models_use(args: argparse.Namespace, services: Services) -> int:
    stored, path, name, size = _pick(services, args.model)
    fit = estimate_fit(path, services.config.model.n_ctx, size=size)
    if not fit.fits and not args.force:
        raise ModelWontFitError(f"{name}: {fit.describe()}")
    services.config.model.path = stored
    services.config.model.backend = "local"
    services.save_config()
    if args.json:
        print_json({"path": str(path), "stored": stored, "name": name, "fit": fit.to_dict()})
    else:
        write_out(f"Now using {name}.\n{fit.describe()}\n")
        if not fit.fits:
            sys.stderr.write("warning: it may not fit in memory (used anyway: --force)\n")
    return 0


# -- warm --------------------------------------------------------------------------------------
def cmd_models_warm(args: argparse.Namespace, services: Services) -> int:
    started = time.perf_counter()
    services.agent.warm_up()
    folder = services.paths.prompt_states_dir
    saved = sorted(folder.glob("*.kv")) if folder.is_dir() else []
    if args.into is not None:
        args.into.mkdir(parents=True, exist_ok=True)
        for state in saved:
            shutil.copy2(state, args.into / state.name)
    where = args.into or folder
    print(f"{len(saved)} prompt state(s) ready in {where} ({time.perf_counter() - started:.1f} s)")
    return 0
