"""Pair (aspect) models: finding the term, the inputs built from a pair, every kind takes pairs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, read_manifest
from sentiment_pipeline.models.artifacts.pairs import (
    find_term,
    marked,
    pair_document,
    pair_documents,
    pair_segments,
)
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from synthetic import LABELS

PAIRS = [
    ("great video but the audio is terrible", "audio"),
    ("great video but the audio is terrible", "video"),
    ("The Battery Life is fine", "battery life"),
    ("I used the soundtrack and the sound", "sound"),
]


def test_find_term_is_case_insensitive_on_word_boundaries():
    assert find_term("The Battery  Life is fine", "battery life") == (4, 17)
    text = "the soundtrack, then the sound"
    assert text[slice(*find_term(text, "sound"))] == "sound"
    assert find_term(text, "sound") == (25, 30)
    assert find_term("a c++ compiler", "c++") == (2, 5)
    assert find_term("no such words", "audio") is None
    assert find_term("anything", "  ") is None


def test_find_term_falls_back_to_a_part_of_a_word():
    assert find_term("the keyboards are loud", "keyboard") == (4, 12)


def test_marked_wraps_the_first_occurrence():
    assert marked("great audio, bad audio", "Audio") == "great [ audio ], bad audio"
    assert marked("nothing here", "audio") == "nothing here"


def test_pair_segments_refuse_what_is_not_a_pair():
    assert pair_segments(PAIRS[:1], "plain") == ([PAIRS[0][0]], ["audio"])
    assert pair_segments(PAIRS[:1], "marked")[0] == ["great video but the [ audio ] is terrible"]
    for bad in (["just a text"], [("a",)], [("a", 1)]):
        with pytest.raises(ValueError, match="input 0 is .*\\(text, aspect\\) pairs"):
            pair_segments(bad, "plain")


def test_pair_document_describes_the_words_near_the_aspect():
    audio, video = (pair_document(*pair) for pair in PAIRS[:2])
    assert "near_terrible" in audio and "near_terrible" not in video
    assert "aspect_audio" in audio and "aspect_video" in video
    assert audio.startswith(PAIRS[0][0])


def test_manifest_refuses_a_pair_style_on_a_text_model():
    with pytest.raises(ValueError, match="pair_style is for pair models"):
        ModelManifest(name="x", kind="sklearn", labels=LABELS, pair_style="marked")


def _pair_baseline(target: Path) -> Path:
    texts = [
        ("the audio is terrible but the video is great", "audio", 0),
        ("the audio is terrible but the video is great", "video", 2),
        ("great screen, awful keyboard", "screen", 2),
        ("great screen, awful keyboard", "keyboard", 0),
        ("it has a screen and a keyboard", "screen", 1),
        ("it has a screen and a keyboard", "keyboard", 1),
    ] * 3
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(C=100))])
    pipeline.fit(pair_documents([(t, a) for t, a, _ in texts]), [y for *_, y in texts])
    manifest = ModelManifest(name="pair_baseline", kind="sklearn", labels=LABELS, input="pair")
    save_sklearn(target, pipeline, manifest)
    return target


def test_a_pair_baseline_takes_pairs_and_tells_the_aspects_apart(tmp_path):
    model = load_model(_pair_baseline(tmp_path / "pair_baseline"), trust=True)
    assert model.manifest.input == "pair"
    labels = model.predict([("awful audio, great video", "audio"),
                            ("awful audio, great video", "video")])
    assert labels == ["negative", "positive"]
    assert model.token_lengths([("a b c", "b")]) == [7]


def test_a_transformer_pair_model_feeds_segment_ids(tiny_pair_model):
    model = load_model(tiny_pair_model)
    encoded = model.tokenize(PAIRS)
    assert all(1 in types for types in encoded["token_type_ids"])
    proba = model.predict_proba(PAIRS)
    assert proba.shape == (4, 3) and np.allclose(proba.sum(axis=1), 1)
    # The same text asked about two aspects is two different inputs.
    assert not np.array_equal(proba[0], proba[1])
    # Batching and order: one at a time gives the same answers.
    one_by_one = np.vstack([model.predict_proba([pair]) for pair in PAIRS])
    assert np.allclose(proba, one_by_one, atol=1e-5)
    with pytest.raises(ValueError, match="pairs of two strings"):
        model.predict_proba(["a text alone"])


@pytest.mark.slow
def test_a_pair_model_exports_to_onnx_with_segment_ids(tiny_pair_model, tmp_path):
    for name in ("onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    from sentiment_pipeline.config.export import OnnxExportConfig
    from sentiment_pipeline.models.conversion.int8 import quantize_int8
    from sentiment_pipeline.models.conversion.onnx_export import export_transformers

    source = tmp_path / "aspect_model"
    shutil.copytree(tiny_pair_model, source)
    export_transformers(source, tmp_path / "fp32", OnnxExportConfig())
    quantize_int8(tmp_path / "fp32", tmp_path / "int8", OnnxExportConfig())
    fp32 = load_model(tmp_path / "fp32")
    assert read_manifest(tmp_path / "fp32").input == "pair"
    assert "token_type_ids" in fp32.input_names
    torch_proba = load_model(source).predict_proba(PAIRS)
    assert np.abs(fp32.predict_proba(PAIRS) - torch_proba).max() < 1e-4
    assert load_model(tmp_path / "int8").predict_proba(PAIRS).shape == (4, 3)
