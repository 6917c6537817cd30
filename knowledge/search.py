"""Hybrid search: FTS5 BM25 and vector KNN, fused by weighted reciprocal rank fusion.

Vector side, coarse-then-exact: sqlite-vec scans 1-bit codes for ``candidates`` nearest by
hamming distance (filters by folder and type applied inside the scan, as vec0 metadata
columns), then the candidates' float32 vectors are re-scored exactly. Small indexes, and
filters that leave few chunks (a path glob, a sub-folder), are scored exactly outright.

Fusion is weighted reciprocal rank fusion in which each item's term is also scaled by its
min-max normalised score on its side: ``w * s_norm / (rrf_k + rank)``. The BM25 side
weighs 0.3, except for chunks containing *every* query term (``bm25_full_match_weight``):
a complete keyword match (a code, a name, an exact phrase) is strong evidence, while the
partial matches of a paraphrased question are weak. Measured on our quality set (tests/
benchmarks/bench_knowledge_quality.py, real MiniLM): plain RRF at any BM25 weight lost
recall@1 on paraphrased questions against vector alone and could not find invoice numbers
among similar invoices; this fusion matched or beat the better side on paraphrased
questions, on keyword queries and on codes hidden among hundreds of look-alike notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge.store import VEC_TABLE, KnowledgeStore
from knowledge.types import Hit, SearchFilters
from knowledge.vectors import from_blobs, sign_blob
from models.embedding import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match nearly every chunk: they slow BM25 down and add nothing to its ranking.
_STOPWORDS_TEXT = """
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in
into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours
yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class SearchSettings:
    vector_weight: float = 1.0
    bm25_weight: float = 0.3
    bm25_full_match_weight: float = 1.5
    rrf_k: int = 60
    # Scale each item's RRF term by its normalised score on its side (see the module doc);
    # False gives plain weighted RRF.
    score_weighted: bool = True
    # The coarse pass: "memory" (hamming over codes held in numpy, see coarse.py) or "vec0"
    # (sqlite-vec's KNN on the bit column, ``k = ?``; cost grows with k).
    coarse: str = "memory"
    # Coarse candidates per query (by hamming distance): ``candidate_fraction`` of the
    # chunks in scope, at least ``candidates`` and ``candidate_factor * k``, at most
    # ``max_candidates``; then the best ``rescore`` of them by int8 cosine are re-scored
    # exactly from their float32 vectors ("memory" mode; see coarse.py).
    candidates: int = 1000
    candidate_factor: int = 10
    candidate_fraction: float = 0.04
    max_candidates: int = 8000
    rescore: int = 100
    # "vec0" mode: neighbours asked of sqlite-vec (``k = ?``), at least candidate_factor * k.
    vec0_k: int = 100
    # Below this many chunks in scope, skip the coarse pass and score every vector.
    exact_limit: int = 1000
    # How deep each side ranks before fusion.
    depth: int = 50
    # A query term in more than this many chunks (a fraction of all, or at least the
    # minimum) is left out of BM25 (see HybridSearcher._selective_terms).
    bm25_common_fraction: float = 0.05
    bm25_common_min: int = 2000

    def n_candidates(self, in_scope: int, k: int) -> int:
        n = max(self.candidates, self.candidate_factor * k, int(in_scope * self.candidate_fraction))
        return min(n, max(self.max_candidates, self.candidate_factor * k))


@dataclass(frozen=True)
class Ranked:
    chunk_id: int
    score: float
    full_match: bool = False  # BM25 side: the chunk contains every query term


class HybridSearcher:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder | None,
        settings: SearchSettings | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or SearchSettings()

    # -- public ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Hybrid search. ``query_vector`` skips embedding the query (benchmarks, or a
        caller that already has it)."""
        filters = filters or SearchFilters()
        depth = max(self.settings.depth, k)
        vector: list[Ranked] = []
        if query_vector is not None:
            vector = self.vector_ranking_for(query_vector, depth, filters)
        elif self.vector_ready:
            vector = self.vector_ranking(query, depth, filters)
        bm25 = self.bm25_ranking(query, depth, filters)
        return self._fuse(query, vector, bm25, k)

    @property
    def vector_ready(self) -> bool:
        state = self.store.index_state()
        return (
            self.embedder is not None
            and state is not None
            and state.model_id == self.embedder.model_id
        )

    def embed_query(self, query: str) -> np.ndarray:
        assert self.embedder is not None
        text = fit_tokens(query, self.embedder.count_tokens, self.embedder.max_tokens)
        return np.asarray(self.embedder.embed([text]), dtype=np.float32)[0]

    def vector_ranking(self, query: str, n: int, filters: SearchFilters) -> list[Ranked]:
        if not query.strip():
            return []
        q = self.embed_query(query)
        return self.vector_ranking_for(q, n, filters)

    def vector_ranking_for(self, q: np.ndarray, n: int, filters: SearchFilters) -> list[Ranked]:
        state = self.store.index_state()
        if state is None:
            return []
        root_folder, sub_prefix = self._split_folder(filters.folder)
        narrow = filters.path_glob is not None or sub_prefix is not None
        with self.store.lock:
            conn = self.store.conn
            allowed: list[int] | None = None
            if narrow:
                # A glob or a sub-folder cannot be a vec0 filter; such scopes are usually
                # small, so they are scored exactly; a large one is a mask on the coarse pass.
                allowed = self._chunk_ids_matching(filters, limit=None)
                if len(allowed) <= self.settings.exact_limit:
                    return self._exact(conn, q, allowed, n, state.dimension)
            if self.settings.coarse == "vec0":
                return self._vec0_coarse(conn, q, n, filters, root_folder, allowed, state.dimension)
            coarse = self.store.coarse_index()
            total = len(coarse) if coarse is not None else 0
            if coarse is None or total <= self.settings.exact_limit:
                ids = None if filters.empty else self._chunk_ids_matching(filters, limit=None)
                return self._exact(conn, q, ids, n, state.dimension)
            in_scope = total if allowed is None else len(allowed)
            wanted = self.settings.n_candidates(in_scope, n)
            ids = coarse.candidates(
                sign_blob(q, self.store.center()),
                q,
                wanted,
                max(self.settings.rescore, 2 * n),
                folder=root_folder,
                types=filters.types,
                allowed=None if allowed is None else np.asarray(allowed, dtype=np.int64),
            )
            return self._exact(conn, q, ids, n, state.dimension)

    def _vec0_coarse(
        self,
        conn: Any,
        q: np.ndarray,
        n: int,
        filters: SearchFilters,
        root_folder: str | None,
        allowed: list[int] | None,
        dimension: int,
    ) -> list[Ranked]:
        total = conn.execute(f"SELECT count(*) FROM {VEC_TABLE}").fetchone()[0]
        if total <= self.settings.exact_limit and allowed is None:
            ids = None if filters.empty else self._chunk_ids_matching(filters, limit=None)
            return self._exact(conn, q, ids, n, dimension)
        wanted = max(self.settings.vec0_k, n * self.settings.candidate_factor)
        if allowed is not None:
            wanted *= 4  # the glob is applied after the scan
        code = sign_blob(q, self.store.center())
        sql = f"SELECT chunk_id FROM {VEC_TABLE} WHERE coarse MATCH vec_bit(?) AND k = ?"
        args: list[Any] = [code, wanted]
        if root_folder is not None:
            sql += " AND folder = ?"
            args.append(root_folder)
        if filters.types:
            sql += f" AND type IN ({','.join('?' * len(filters.types))})"
            args.extend(filters.types)
        ids = [r[0] for r in conn.execute(sql, args)]
        if allowed is not None:
            keep = set(allowed)
            ids = [i for i in ids if i in keep]
        return self._exact(conn, q, ids, n, dimension)

    def bm25_ranking(self, query: str, n: int, filters: SearchFilters) -> list[Ranked]:
        with self.store.lock:
            terms = self._selective_terms(query_terms(query))
            if not terms:
                return []
            match = " OR ".join(f'"{t}"' for t in terms)
            sql = "SELECT f.rowid, bm25(chunks_fts, 1.0, 0.5) AS score FROM chunks_fts f"
            where, args = self._document_filters(filters)
            if where:
                sql += " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
            sql += " WHERE chunks_fts MATCH ?" + "".join(f" AND {w}" for w in where)
            sql += " ORDER BY score LIMIT ?"
            rows = self.store.conn.execute(sql, [match, *args, n]).fetchall()
            full = self._full_matches(terms, [int(r[0]) for r in rows])
        return [Ranked(int(r[0]), float(r[1]), int(r[0]) in full) for r in rows]

    def _full_matches(self, terms: list[str], ids: list[int]) -> set[int]:
        """Which of ``ids`` contain every term. (The terms are the selective ones, so the
        AND query is cheap; a ``rowid IN`` constraint would make FTS5 re-run it per id.)"""
        if not ids:
            return set()
        if len(terms) == 1:
            return set(ids)  # every match of a one-term query matches it fully
        rows = self.store.conn.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
            [" AND ".join(f'"{t}"' for t in terms)],
        ).fetchall()
        return set(ids) & {int(r[0]) for r in rows}

    def _selective_terms(self, terms: list[str]) -> list[str]:
        """Drop terms found in very many chunks.

        ``ORDER BY rank`` scores every matching row, ~0.5 ms per 1000 at 100k chunks, so
        one word present everywhere costs ~50 ms; its idf is near zero anyway, so it barely
        moves the ranking. A query made only of such words gets no BM25 side (the vector
        side still answers it). Each probe stops counting at the cap, so probing is cheap.
        """
        if not terms:
            return []
        conn = self.store.conn
        top = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
        cap = max(self.settings.bm25_common_min, int(top * self.settings.bm25_common_fraction))
        kept = []
        for term in terms:
            found = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                (f'"{term}"', cap + 1),
            ).fetchone()[0]
            if found and found <= cap:
                kept.append(term)
        return kept

    # -- vector helpers -------------------------------------------------------------------

    def _exact(
        self, conn: Any, q: np.ndarray, ids: list[int] | None, n: int, dimension: int
    ) -> list[Ranked]:
        if ids is None:
            rows = conn.execute("SELECT id, embedding FROM chunks").fetchall()
        else:
            rows = []
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows.extend(
                    conn.execute(
                        f"SELECT id, embedding FROM chunks WHERE id IN ({marks})", part
                    ).fetchall()
                )
        if not rows:
            return []
        matrix = from_blobs([r[1] for r in rows], dimension)
        scores = np.einsum("ij,j->i", matrix, q)  # not @: see coarse.py on BLAS threads
        order = np.argsort(-scores, kind="stable")[:n]
        return [Ranked(int(rows[i][0]), float(scores[i])) for i in order]

    def _split_folder(self, folder: str | None) -> tuple[str | None, str | None]:
        """A watched folder filters inside the vec0 scan; a sub-folder is a path prefix."""
        if folder is None:
            return None, None
        folder = folder.rstrip("/") or "/"
        if folder in self.store.folder_paths():
            return folder, None
        return None, folder

    def _document_filters(self, filters: SearchFilters) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if filters.folder is not None:
            root, sub = self._split_folder(filters.folder)
            if root is not None:
                where.append("d.folder = ?")
                args.append(root)
            else:
                assert sub is not None
                where.append("d.path >= ? AND d.path < ?")
                args.extend([sub + "/", sub + "0"])  # '0' is the character after '/'
        if filters.types:
            where.append(f"d.type IN ({','.join('?' * len(filters.types))})")
            args.extend(filters.types)
        if filters.path_glob is not None:
            where.append("d.path GLOB ?")
            args.append(filters.path_glob)
        return where, args

    def _chunk_ids_matching(self, filters: SearchFilters, limit: int | None) -> list[int]:
        where, args = self._document_filters(filters)
        sql = "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self.store.conn.execute(sql, args)]

    # -- fusion and hits ------------------------------------------------------------------

    def _fuse(self, query: str, vector: list[Ranked], bm25: list[Ranked], k: int) -> list[Hit]:
        s = self.settings
        fused: dict[int, float] = {}
        # SQLite's bm25() is "lower is better": negate so that higher is better on both sides.
        sides = ((vector, s.vector_weight, 1.0), (bm25, s.bm25_weight, -1.0))
        for ranking, weight, sign in sides:
            scores = _normalised([sign * r.score for r in ranking]) if s.score_weighted else None
            for rank, r in enumerate(ranking, start=1):
                w = s.bm25_full_match_weight if r.full_match else weight
                term = w / (s.rrf_k + rank)
                if scores is not None:
                    term *= scores[rank - 1]
                fused[r.chunk_id] = fused.get(r.chunk_id, 0.0) + term
        top = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        vec_info = {r.chunk_id: (rank, r.score) for rank, r in enumerate(vector, start=1)}
        bm_info = {r.chunk_id: (rank, r.score) for rank, r in enumerate(bm25, start=1)}
        rows = self._chunk_rows([cid for cid, _ in top])
        terms = query_terms(query)
        hits = []
        for chunk_id, score in top:
            row = rows.get(chunk_id)
            if row is None:  # deleted between ranking and now
                continue
            v = vec_info.get(chunk_id)
            b = bm_info.get(chunk_id)
            hits.append(
                Hit(
                    chunk_id=chunk_id,
                    document_id=row["document_id"],
                    path=row["path"],
                    folder=row["folder"],
                    type=row["type"],
                    page=row["page"],
                    heading=row["heading"],
                    snippet=make_snippet(row["text"], terms),
                    text=row["text"],
                    score=round(score, 6),
                    vector_score=None if v is None else round(v[1], 6),
                    bm25_score=None if b is None else round(b[1], 6),
                    vector_rank=None if v is None else v[0],
                    bm25_rank=None if b is None else b[0],
                )
            )
        return hits

    def _chunk_rows(self, ids: list[int]) -> dict[int, Any]:
        if not ids:
            return {}
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT c.id, c.document_id, c.text, c.heading, c.page, d.path, d.folder, d.type "
                "FROM chunks c JOIN documents d ON d.id = c.document_id "
                f"WHERE c.id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        return {r["id"]: r for r in rows}


def _normalised(scores: list[float]) -> list[float]:
    """Min-max to [0, 1]; a list of equal scores (or one score) is all 1s."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo < 1e-9:
        return [1.0] * len(scores)
    return [(x - lo) / (hi - lo) for x in scores]


def query_terms(query: str) -> list[str]:
    """Lower-cased words of the query, stopwords dropped, in order, without repeats."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(kept or words))


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression: any of the terms (OR), each quoted so no word is syntax."""
    return " OR ".join(f'"{t}"' for t in query_terms(query))


def fit_tokens(text: str, count_tokens: Any, max_tokens: int) -> str:
    """Cut ``text`` at a word boundary so that it fits the model (queries can be pasted
    documents)."""
    if count_tokens(text) <= max_tokens:
        return text
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(" ".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """The window of ``text`` with the most query-term hits (by word prefix), tidied."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    stems = sorted({re.escape(t[:5]) for t in terms if len(t) > 2}, key=len, reverse=True)
    positions: list[int] = []
    if stems:
        pattern = re.compile(r"\b(?:" + "|".join(stems) + r")", re.IGNORECASE)
        positions = [m.start() for m in pattern.finditer(flat)]
    best_start, best_hits = 0, 0
    end_index = 0
    for i, pos in enumerate(positions):  # two pointers: hits within [start, start + width)
        start = max(0, pos - width // 4)
        end_index = max(end_index, i)
        while end_index < len(positions) and positions[end_index] < start + width:
            end_index += 1
        if end_index - i > best_hits:
            best_start, best_hits = start, end_index - i
    if best_start:
        space = flat.find(" ", best_start)
        best_start = space + 1 if 0 <= space < best_start + 20 else best_start
    end = min(len(flat), best_start + width)
    if end < len(flat):
        space = flat.rfind(" ", best_start, end)
        end = space if space > best_start + width // 2 else end
    prefix = "…" if best_start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    return prefix + flat[best_start:end] + suffix
