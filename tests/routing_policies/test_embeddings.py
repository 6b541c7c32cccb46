"""The optional embedding feature: cosine-similarity plumbing and the per-item cache with a fake encoder everywhere,
the real model where the `embeddings` extra is installed."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from annotate.models import ItemEmbedding
from routing.embeddings import bundled_encoder, cached_similarities, cosine_similarities, embeddings_available
from routing.features import TEXT_FEATURES, feature_matrix, feature_names
from tests.factories import CampaignFactory, ItemFactory

needs_model = pytest.mark.skipif(not embeddings_available(), reason="the embeddings extra is not installed")


class LetterCounts:
    """A fake encoder: each text as its counts of a–z. Records every call."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[text.lower().count(chr(c)) for c in range(97, 123)] for text in texts], dtype=float)


def test_cosine_similarity_against_scikit_learn():
    texts_a = ["abc", "hello world", "zzz", "same text", "abc"]
    texts_b = ["abd", "world hello", "aaa", "same text", "cab"]
    encoder = LetterCounts()
    similarities = cosine_similarities(texts_a, texts_b, encoder=encoder)
    a, b = LetterCounts()(texts_a), LetterCounts()(texts_b)
    expected = np.diag(cosine_similarity(a, b))
    np.testing.assert_allclose(similarities, expected)
    assert similarities[1] == pytest.approx(1.0) and similarities[2] == 0.0
    # one call, each distinct text once
    assert len(encoder.calls) == 1 and sorted(encoder.calls[0]) == sorted(set(texts_a + texts_b))


def test_identical_and_empty_texts():
    similarities = cosine_similarities(["", "", "123"], ["", "abc", "123"], encoder=LetterCounts())
    # identical texts are 1 even when they embed to zero vectors; a zero vector against another text is 0
    assert similarities.tolist() == [1.0, 0.0, 1.0]
    assert cosine_similarities([], [], encoder=LetterCounts()).shape == (0,)


def test_mismatches_raise():
    with pytest.raises(ValueError, match="texts A"):
        cosine_similarities(["a"], [], encoder=LetterCounts())
    with pytest.raises(ValueError, match="embeddings for 2 texts"):
        cosine_similarities(["a"], ["b"], encoder=lambda texts: np.zeros((1, 3)))


def _items(n: int) -> list[dict]:
    return [
        {"prompt": "p", "response_a": f"answer {i % 7}", "response_b": f"reply {i % 5}", "metadata": {"d": "x"}}
        for i in range(n)
    ]


def test_feature_matrix_batches_all_items_in_one_call():
    items = _items(3000)
    encoder = LetterCounts()
    matrix, names = feature_matrix(items, vocabulary=["d=x"], embeddings=True, encoder=encoder)
    assert names == feature_names(["d=x"], embeddings=True)
    assert names.index("embedding_similarity") == len(TEXT_FEATURES)
    assert len(encoder.calls) == 1 and len(encoder.calls[0]) == 7 + 5  # distinct responses only
    column = matrix[:, names.index("embedding_similarity")]
    expected = cosine_similarities([i["response_a"] for i in items], [i["response_b"] for i in items], encoder=encoder)
    np.testing.assert_allclose(column, expected)
    # the other columns are the ones without embeddings
    without, plain_names = feature_matrix(items, vocabulary=["d=x"])
    np.testing.assert_array_equal(np.delete(matrix, names.index("embedding_similarity"), axis=1), without)
    assert plain_names == [name for name in names if name != "embedding_similarity"]


def test_off_by_default_and_none_follows_availability():
    items = _items(3)
    _, names = feature_matrix(items)
    assert "embedding_similarity" not in names and names == feature_names()
    _, names = feature_matrix(items, embeddings=None, encoder=LetterCounts())
    assert ("embedding_similarity" in names) == embeddings_available()


@pytest.mark.skipif(embeddings_available(), reason="the embeddings extra is installed")
def test_asking_for_embeddings_without_the_model_raises():
    with pytest.raises(ImportError, match=r"tandem\[embeddings\]"):
        feature_matrix(_items(2), embeddings=True)


@needs_model
def test_bundled_model_loads_offline_once(monkeypatch):
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("no network in this test")

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # loading sets them; restored after the test
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    bundled_encoder.cache_clear()
    encoder = bundled_encoder()
    assert bundled_encoder() is encoder  # cached per process
    vectors = encoder(["The cat sat on the mat.", "A cat was sitting on the mat.", "Quarterly tax filing deadlines"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarities = cosine_similarities(
        ["The cat sat on the mat.", "The cat sat on the mat."],
        ["A cat was sitting on the mat.", "Quarterly tax filing deadlines"],
    )
    assert similarities[0] > 0.7 > 0.3 > similarities[1]
    assert attempts == []


@needs_model
def test_feature_matrix_with_the_bundled_model():
    items = _items(50)
    matrix, names = feature_matrix(items, embeddings=None)
    column = matrix[:, names.index("embedding_similarity")]
    assert ((column > -1.0) & (column <= 1.0)).all()
    again, _ = feature_matrix(items, embeddings=True)
    np.testing.assert_allclose(again, matrix, atol=1e-6)


@pytest.mark.django_db
def test_cached_similarities_compute_each_item_once_per_model():
    campaign = CampaignFactory()
    items = [ItemFactory(campaign=campaign, response_a=f"answer {i}", response_b=f"reply {i % 3}") for i in range(6)]
    triples = [(item.pk, item.response_a, item.response_b) for item in items]
    encoder = LetterCounts()
    first = cached_similarities(items=triples[:4], model="letters", encoder=encoder)
    expected = cosine_similarities([t[1] for t in triples], [t[2] for t in triples], encoder=LetterCounts())
    assert list(first) == [t[0] for t in triples[:4]]
    np.testing.assert_allclose(list(first.values()), expected[:4])
    assert len(encoder.calls) == 1 and ItemEmbedding.objects.filter(model="letters").count() == 4

    again = cached_similarities(items=triples[:4], model="letters", encoder=encoder)
    assert again == first and len(encoder.calls) == 1  # nothing computed: all from the cache

    more = cached_similarities(items=triples, model="letters", encoder=encoder)
    assert len(encoder.calls) == 2  # one call, for the two missing items only
    assert sorted(encoder.calls[1]) == sorted({*triples[4][1:], *triples[5][1:]})
    np.testing.assert_allclose([more[t[0]] for t in triples], expected)

    other = LetterCounts()
    cached_similarities(items=triples[:1], model="another-model", encoder=other)
    assert len(other.calls) == 1  # another model's numbers are its own
    assert ItemEmbedding.objects.count() == 7
    assert cached_similarities(items=[], model="letters", encoder=encoder) == {} and len(encoder.calls) == 2


@pytest.mark.django_db
def test_cached_similarities_feed_the_feature_matrix():
    campaign = CampaignFactory()
    items = [ItemFactory(campaign=campaign, response_a=f"answer {i}", response_b="same reply") for i in range(3)]
    rows = [{"prompt": i.prompt, "response_a": i.response_a, "response_b": i.response_b} for i in items]
    encoder = LetterCounts()
    cached = cached_similarities(
        items=[(i.pk, i.response_a, i.response_b) for i in items], model="letters", encoder=encoder
    )
    from_cache, names = feature_matrix(rows, similarities=[cached[i.pk] for i in items])
    computed, computed_names = feature_matrix(rows, embeddings=True, encoder=LetterCounts())
    assert names == computed_names
    np.testing.assert_allclose(from_cache, computed)
