from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_core import cli_knowledge
from agent_core.config import Config, Paths
from knowledge import KnowledgeBase
from models.errors import JackdawError
from tests.knowledge.conftest import write


@pytest.fixture
def services(kb: KnowledgeBase, tmp_path: Path) -> SimpleNamespace:
    home = tmp_path / "home"
    paths = Paths(config_dir=home, data_dir=home, cache_dir=home / "cache")
    config = Config()
    saved: list[dict[str, Any]] = []
    for folder in kb.folder_paths():
        kb.remove_folder(folder)  # start from config: no folders
    return SimpleNamespace(
        config=config,
        paths=paths,
        knowledge=kb,
        save_config=lambda: saved.append(config.to_dict()),
        saved=saved,
    )


def run(services: SimpleNamespace, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli_knowledge.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(args, services))


def json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON object, nothing else on stdout


def test_folders_index_search_round_trip(
    services: SimpleNamespace, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(docs / "heron.md", "# Herons\n\nHerons stand still in shallow water to fish.")
    assert run(services, "folders", "add", str(docs), "--json") == 0
    data = json_out(capsys)
    assert data["folder"] == str(docs) and data["index"]["added"] == 1
    assert services.config.knowledge.watched_folders == [str(docs)]
    assert services.saved[-1]["knowledge"]["watched_folders"] == [str(docs)]

    assert run(services, "folders", "list", "--json") == 0
    listing = json_out(capsys)
    assert listing["folders"][0]["path"] == str(docs) and listing["folders"][0]["documents"] == 1

    write(docs / "crane.txt", "Cranes dance in pairs.")
    assert run(services, "index", "--json") == 0
    counts = json_out(capsys)
    assert {k: counts[k] for k in ("seen", "added", "unchanged", "chunks_embedded")} == {
        "seen": 2,
        "added": 1,
        "unchanged": 1,
        "chunks_embedded": 1,
    }
    assert run(services, "index", str(docs / "crane.txt"), "--json") == 0
    assert json_out(capsys)["unchanged"] == 1

    assert run(services, "search", "herons fish water", "-k", "1", "--json") == 0
    found = json_out(capsys)
    assert len(found["hits"]) == 1
    hit = found["hits"][0]
    assert hit["path"] == str(docs / "heron.md") and hit["heading"] == "Herons"
    assert {"snippet", "chunk_id", "score", "vector_score", "bm25_score", "source"} <= set(hit)

    assert run(services, "search", "cranes", "--type", "markdown", "--json") == 0
    assert all(h["type"] == "markdown" for h in json_out(capsys)["hits"])

    assert run(services, "folders", "remove", str(docs), "--json") == 0
    assert json_out(capsys) == {"folder": str(docs), "removed_documents": 2}
    assert services.config.knowledge.watched_folders == []


def test_human_output_and_progress_on_stderr(
    services: SimpleNamespace, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(docs / "a.txt", "alpha beta")
    run(services, "folders", "add", str(docs), "--no-index")
    capsys.readouterr()
    assert run(services, "index") == 0
    out, err = capsys.readouterr()
    assert "1 added" in out and "[done] 1/1 files" in err
    assert run(services, "search", "alpha") == 0
    out, _ = capsys.readouterr()
    assert out.startswith("1. ") and "a.txt" in out


def test_user_errors_say_what_to_do(services: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(JackdawError) as info:
        run(services, "folders", "add", str(tmp_path / "nope"))
    assert info.value.hint
    with pytest.raises(JackdawError) as info2:
        run(services, "folders", "remove", str(tmp_path))
    assert "folders add" in str(info2.value)
    with pytest.raises(JackdawError):
        run(services, "index", str(tmp_path / "outside.txt"))


def test_config_is_the_source_of_truth_for_folders(
    services: SimpleNamespace,
    kb: KnowledgeBase,
    docs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services.config.knowledge.watched_folders = [str(docs)]  # edited by hand
    run(services, "folders", "list", "--json")
    assert [f["path"] for f in json_out(capsys)["folders"]] == [str(docs)]
    services.config.knowledge.watched_folders = []
    run(services, "folders", "list", "--json")
    assert json_out(capsys)["folders"] == []


def test_folders_status_and_list_show_every_file_not_indexed(
    services: SimpleNamespace, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    write(docs / "ok.md", "# Fine\n\nAll good.")
    write(docs / "bundle.js", "var a=function(b){return b+1},c=[1,2,3].map(a);" * 400)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage" * 40)
    (docs / os.fsdecode(b"bad\xffname\x1b[31m.txt")).write_text("x")
    run(services, "folders", "add", str(docs), "--json")
    capsys.readouterr()
    run(services, "index", "--json")  # a later run: the failures are still on record
    capsys.readouterr()

    assert run(services, "folders", "status", "--json") == 0
    status = json_out(capsys)
    files = {Path(f["path"]).name: f for f in status["files"]}
    assert files["bundle.js"]["status"] == "skipped"
    assert files["bundle.js"]["reason"].startswith("minified or generated")
    assert files["broken.pdf"]["status"] == "failed"
    assert any("not valid UTF-8" in f["reason"] for f in status["files"])
    assert status["folders"][0]["problems"] == 3
    assert status["runs"][0]["status"] == "done"

    assert run(services, "folders", "list", "--json") == 0
    listing = json_out(capsys)
    assert {Path(p["path"]).name for p in listing["folders"][0]["problem_files"]} >= {
        "bundle.js",
        "broken.pdf",
    }

    assert run(services, "folders", "status") == 0
    out = capsys.readouterr().out
    assert "skipped: minified or generated" in out and "failed: not a readable PDF" in out
    assert "\x1b" not in out and "\\xff" in out  # a hostile name cannot drive the terminal
