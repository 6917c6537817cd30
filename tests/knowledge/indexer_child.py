"""An indexing pass in a child process, for the SIGKILL test.

    python indexer_child.py DB FOLDER

Prints one line per progress event ("progress <files_done> <chunks>") so the parent can kill
it at a known point. The embedder is the fake one, slowed down so the run takes a while.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge import Progress, open_knowledge_base
from tests.knowledge.fakes import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    def embed(self, texts):  # type: ignore[no-untyped-def]
        time.sleep(0.005 * len(texts))
        return super().embed(texts)


def main() -> None:
    db, folder = sys.argv[1], sys.argv[2]
    kb = open_knowledge_base(Path(db), SlowEmbedder())
    kb.add_folder(folder)

    def on_progress(p: Progress) -> None:
        print(f"progress {p.files_done} {p.chunks_embedded}", flush=True)

    result = kb.index(on_progress=on_progress)
    print("result", result.added, result.updated, result.unchanged, flush=True)
    kb.close()


if __name__ == "__main__":
    main()
