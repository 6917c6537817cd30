from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge import Hit, KnowledgeBase, SearchFilters, SearchSettings, open_knowledge_base
from knowledge.search import fit_tokens, fts_query, make_snippet
from tests.knowledge.conftest import write
from tests.knowledge.fakes import FakeEmbedder
from tests.knowledge.pdfgen import write_pdf


@pytest.fixture
def corpus(kb: KnowledgeBase, docs: Path, tmp_path: Path) -> KnowledgeBase:
    write(
        docs / "garden" / "roses.md",
        "# Roses\n\nPrune roses in late winter.\n\n## Pests\n\nAphids love rose buds.",
    )
    write(docs / "garden" / "herbs.txt", "Basil and mint grow well on a sunny windowsill.")
    write(docs / "work" / "deploy.md", "# Deploy\n\nRun the deploy script after the tests pass.")
    write(docs / "work" / "api.py", "def fetch_orders(client):\n    return client.get('/orders')\n")
    write_pdf(docs / "work" / "manual.pdf", ["Intro page.", "The reset button is on page two."])
    other = tmp_path / "other"
    write(other / "roses.txt", "Roses from the other folder.")
    kb.add_folder(other)
    kb.index()
    return kb


def test_hits_carry_source_snippet_chunk_and_scores(corpus: KnowledgeBase, docs: Path) -> None:
    hits = corpus.search("aphids rose buds", k=3)
    top = hits[0]
    assert isinstance(top, Hit)
    assert top.path == str(docs / "garden" / "roses.md")
    assert top.heading == "Roses > Pests" and top.page is None
    assert "Aphids" in top.snippet and top.chunk_id > 0
    assert top.vector_rank is not None and top.bm25_rank == 1
    assert top.score > 0 and top.source == f"{top.path} (Roses > Pests)"
    data = top.to_dict()
    assert data["source"] == top.source and Hit.from_dict(data) == top
    pdf_hit = corpus.search("reset button", k=1)[0]
    assert pdf_hit.page == 2 and pdf_hit.source.endswith("manual.pdf (page 2)")


def test_filters_folder_type_glob_and_subfolder(
    corpus: KnowledgeBase, docs: Path, tmp_path: Path
) -> None:
    everywhere = {Path(h.path).parent.name for h in corpus.search("roses", k=20)}
    assert {"garden", "other"} <= everywhere
    only_other = corpus.search("roses", k=20, filters=SearchFilters(folder=str(tmp_path / "other")))
    assert only_other and {h.folder for h in only_other} == {str(tmp_path / "other")}
    md = corpus.search("roses deploy", k=20, filters=SearchFilters(types=("markdown",)))
    assert md and {h.type for h in md} == {"markdown"}
    code = corpus.search("orders", k=20, filters=SearchFilters(path_glob="*.py"))
    assert [Path(h.path).name for h in code] == ["api.py"]
    sub = corpus.search("roses", k=20, filters=SearchFilters(folder=str(docs / "garden")))
    assert sub and all("/garden/" in h.path for h in sub)
    none = corpus.search("roses", k=5, filters=SearchFilters(path_glob="*.nothing"))
    assert none == []


def test_coarse_then_exact_path_gives_the_exact_ranking(
    tmp_path: Path, docs: Path, embedder: FakeEmbedder
) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    for i in range(60):
        write(docs / f"n{i}.txt", " ".join(rng.choice(words, 12)))
    exact_kb = open_knowledge_base(tmp_path / "k.db", embedder)
    exact_kb.add_folder(docs)
    exact_kb.index()
    for mode in ("memory", "vec0"):
        coarse_kb = open_knowledge_base(
            tmp_path / "k.db",
            embedder,
            search_settings=SearchSettings(
                coarse=mode, exact_limit=0, candidates=60, vec0_k=60, candidate_factor=1
            ),
        )
        for _ in range(10):
            query = " ".join(rng.choice(words, 4))
            q = exact_kb.searcher.embed_query(query)
            exact = exact_kb.searcher.vector_ranking_for(q, 5, SearchFilters())
            coarse = coarse_kb.searcher.vector_ranking_for(q, 5, SearchFilters())
            # With every chunk a candidate, re-scoring must reproduce the exact order.
            assert [r.chunk_id for r in coarse] == [r.chunk_id for r in exact]
        # Folder and type filters are applied inside the coarse scan.
        assert coarse_kb.searcher.vector_ranking_for(q, 5, SearchFilters(types=("pdf",))) == []
        in_folder = coarse_kb.searcher.vector_ranking_for(q, 5, SearchFilters(folder=str(docs)))
        assert [r.chunk_id for r in in_folder] == [r.chunk_id for r in exact]
        coarse_kb.close()


def test_memory_coarse_index_follows_writes_and_other_processes(
    tmp_path: Path, docs: Path, embedder: FakeEmbedder
) -> None:
    settings = SearchSettings(exact_limit=0, candidates=1000)
    kb = open_knowledge_base(tmp_path / "k.db", embedder, search_settings=settings)
    kb.add_folder(docs)
    write(docs / "a.txt", "apples")
    kb.index()
    assert [Path(h.path).name for h in kb.search("apples", k=1)] == ["a.txt"]
    coarse = kb.store.coarse_index()
    assert coarse is not None and len(coarse) == 1
    write(docs / "b.txt", "bananas")
    (docs / "a.txt").unlink()
    kb.index()
    assert kb.store.coarse_index() is coarse and len(coarse) == 1  # kept in step, not reloaded
    assert [Path(h.path).name for h in kb.search("bananas", k=3)] == ["b.txt"]
    # Another connection (another process) writes: the cache notices and reloads.
    other = open_knowledge_base(tmp_path / "k.db", embedder)
    write(docs / "c.txt", "cherries")
    other.index()
    other.close()
    assert {Path(h.path).name for h in kb.search("cherries", k=3)} == {"b.txt", "c.txt"}
    assert kb.store.coarse_index() is not coarse
    kb.close()


def test_bm25_query_is_safe_against_fts_syntax(corpus: KnowledgeBase) -> None:
    assert fts_query('NEAR("a" b) OR * AND "') == '"near" OR "b"'
    assert corpus.search('"unbalanced AND (', k=3) is not None
    assert corpus.search("   ", k=3) == []


def test_model_mismatch_falls_back_to_keyword_search(corpus: KnowledgeBase, tmp_path: Path) -> None:
    from knowledge.errors import IndexModelMismatchError

    other = open_knowledge_base(tmp_path / "knowledge.db", FakeEmbedder(model_id="another-model"))
    assert not other.model_matches
    plan = other.rebuild_plan()
    assert plan is not None and plan.old_model_id == "fake-bow-v1" and plan.chunks > 0
    hits = other.search("aphids", k=3)
    assert hits and hits[0].vector_score is None and hits[0].bm25_rank == 1
    with pytest.raises(IndexModelMismatchError):
        other.index()


def test_snippet_centres_on_query_terms() -> None:
    text = (
        "Filler words here. " * 30
        + "The lighthouse keeper lit the lamp at dusk. "
        + "More filler. " * 30
    )
    snippet = make_snippet(text, ["lighthouse", "lamp"])
    assert "lighthouse keeper lit the lamp" in snippet
    assert snippet.startswith("…") and snippet.endswith("…") and len(snippet) <= 245
    assert make_snippet("short text", ["x"]) == "short text"


def test_over_long_queries_are_cut_to_fit_the_model() -> None:
    e = FakeEmbedder(max_tokens=20)
    text = fit_tokens("word " * 100, e.count_tokens, e.max_tokens)
    assert e.count_tokens(text) <= 20 and text.startswith("word")


def test_rebuild_for_a_new_model_swaps_in_when_complete(
    corpus: KnowledgeBase, tmp_path: Path, docs: Path
) -> None:
    corpus.close()
    new = FakeEmbedder(dimension=32, model_id="new-model")
    kb = open_knowledge_base(tmp_path / "knowledge.db", new)
    assert kb.rebuild_plan() is not None
    cancel = __import__("threading").Event()
    cancel.set()
    first = kb.rebuild(cancel=cancel)
    assert first.cancelled and not kb.model_matches  # the old index still serves
    assert kb.search("aphids", k=1)[0].vector_score is None
    result = kb.rebuild()
    assert not result.cancelled and result.added >= 5
    assert kb.model_matches and kb.rebuild_plan() is None
    state = kb.index_state
    assert state is not None and (state.model_id, state.dimension) == ("new-model", 32)
    hit = kb.search("aphids rose buds", k=1)[0]
    assert hit.vector_score is not None and hit.heading == "Roses > Pests"
    assert {f.path for f in kb.folders()} == {str(docs), str(tmp_path / "other")}
    assert not (tmp_path / "knowledge.db.rebuild").exists()
    kb.close()


def test_an_empty_index_switches_model_without_a_rebuild(tmp_path: Path) -> None:
    first = open_knowledge_base(tmp_path / "k.db", FakeEmbedder(model_id="a", dimension=32))
    first.close()
    second = open_knowledge_base(tmp_path / "k.db", FakeEmbedder(model_id="b", dimension=64))
    assert second.model_matches and second.rebuild_plan() is None
    assert second.index_state is not None and second.index_state.dimension == 64
    second.close()
