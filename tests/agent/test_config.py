from __future__ import annotations

from pathlib import Path

import pytest

from agent_core.config import Config, ConfigError, Paths


def test_jackdaw_home_holds_everything(jackdaw_home: Path) -> None:
    paths = Paths.from_env()
    for path in (paths.config_file, paths.memory_db, paths.knowledge_db, paths.models_dir):
        assert jackdaw_home in path.parents


def test_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[model]\nn_ctx = 2048\nfuture_knob = "x"\n\n[brand_new_section]\nk = 1\n', encoding="utf-8"
    )
    config = Config.load(path)
    assert config.model.n_ctx == 2048
    config.model.temperature = 0.0
    config.knowledge.watched_folders.append("/notes")
    config.save(path)
    again = Config.load(path)
    assert again.model.temperature == 0.0 and again.knowledge.watched_folders == ["/notes"]
    text = path.read_text(encoding="utf-8")
    assert 'future_knob = "x"' in text and "[brand_new_section]" in text


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert Config.load(tmp_path / "absent.toml") == Config()


@pytest.mark.parametrize(
    ("content", "message"),
    [("[model\n", "not valid TOML"), ('[model]\nn_ctx = "big"\n', "n_ctx should be a int")],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Config.load(path)
