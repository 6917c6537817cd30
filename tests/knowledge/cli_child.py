"""``jackdaw index`` in a child process over the fake embedder, for the Ctrl-C tests.

    python cli_child.py DB FOLDER [SECONDS_PER_EMBED_CALL | real:GGUF]

Runs the real command handler (signals, progress on stderr, exit status); only the
embedding model is the fake one, slowed down so that a run takes a while.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent_core import cli_knowledge
from agent_core.config import Config
from knowledge import KnowledgeSettings, open_knowledge_base
from tests.knowledge.fakes import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def embed(self, texts):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)  # stands in for the model's work on one call
        return super().embed(texts)


def main() -> int:
    db, folder = sys.argv[1], sys.argv[2]
    model = sys.argv[3] if len(sys.argv) > 3 else "0.05"
    if model.startswith("real:"):  # the benchmark: the real embedder, default settings
        from models.llama_embedder import LlamaCppEmbedder

        kb = open_knowledge_base(Path(db), LlamaCppEmbedder(model[5:]))
    else:
        kb = open_knowledge_base(
            Path(db), SlowEmbedder(float(model)), KnowledgeSettings(embed_batch=4, chunk_tokens=64)
        )
    config = Config()
    config.knowledge.watched_folders = [folder]
    services = SimpleNamespace(config=config, knowledge=kb, save_config=lambda: None)
    parser = argparse.ArgumentParser()
    cli_knowledge.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["index", "--json"])
    try:
        return int(args.handler(args, services))
    finally:
        kb.close()


if __name__ == "__main__":
    sys.exit(main())
