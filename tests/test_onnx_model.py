"""The `onnx` kind: the tiny transformer exported, parity with PyTorch, int8, safe loading."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("transformers")

from sentiment_pipeline.config.export import OnnxExportConfig  # noqa: E402
from sentiment_pipeline.models.artifacts.loader import load_model  # noqa: E402
from sentiment_pipeline.models.artifacts.manifest import (  # noqa: E402
    ArtifactError,
    content_hash,
    read_manifest,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.onnx_model import OnnxModel  # noqa: E402
from sentiment_pipeline.models.conversion.int8 import (  # noqa: E402
    head_nodes,
    quantize_int8,
    reduce_range,
)
from sentiment_pipeline.models.conversion.onnx_export import export_transformers  # noqa: E402
from synthetic import LABELS, make_comments  # noqa: E402

TEXTS = make_comments(40, seed=7)["text"].tolist() + ["", "ok", "a " * 80]


def _copy(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_fp32_logits_match_pytorch_at_every_batch_size(exported, batch_size) -> None:
    source, fp32, _ = exported
    reference = load_model(source).raw_scores(TEXTS)
    model = load_model(fp32, threads=1)
    assert isinstance(model, OnnxModel)
    model.batch_size = batch_size

    scores = model.raw_scores(TEXTS)

    assert scores.shape == (len(TEXTS), 3) and scores.dtype == np.float64
    assert np.abs(scores - reference).max() <= 1e-3
    assert (scores.argmax(axis=1) == reference.argmax(axis=1)).all()


def test_answers_come_in_input_order_and_lengths_are_the_tokenizers(exported) -> None:
    source, fp32, _ = exported
    model = load_model(fp32, threads=1)
    proba = model.predict_proba(TEXTS)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(model.predict_proba(TEXTS[::-1]), proba[::-1], atol=1e-6)
    assert model.predict_proba([]).shape == (0, 3)
    assert model.token_lengths(TEXTS) == load_model(source).token_lengths(TEXTS)
    assert max(model.token_lengths(TEXTS)) == 32  # params.max_length of the source


def test_int8_loads_and_predicts(exported) -> None:
    source, _, int8 = exported
    model = load_model(int8, threads=1)
    reference = load_model(source).raw_scores(TEXTS)

    scores = model.raw_scores(TEXTS)

    assert model.manifest.precision == "int8"
    assert np.abs(scores - reference).max() < 0.1  # quantised, but the same model
    assert set(model.predict(TEXTS)) <= set(LABELS)


def test_manifests_name_kind_precision_source_and_every_file(exported) -> None:
    source, fp32, int8 = exported
    for folder, precision in ((fp32, "fp32"), (int8, "int8")):
        manifest = read_manifest(folder)
        assert (manifest.kind, manifest.precision, manifest.status) == ("onnx", precision, "ready")
        assert manifest.source_hash == content_hash(source)
        assert manifest.labels == LABELS and manifest.name == "distilbert"
        assert manifest.params["max_length"] == 32 and manifest.metrics == {"test_macro_f1": 0.5}
        assert manifest.files["model"] == "model.onnx"
        for name in manifest.files.values():
            assert (folder / name).is_file()
        assert (folder / "tokenizer.json").is_file()
    # A model under 1.8 GB is one file (see conversion.onnx_export.SINGLE_FILE_LIMIT).
    assert read_manifest(fp32).files == {"model": "model.onnx"}
    quantization = read_manifest(int8).params["quantization"]
    assert quantization["weight_type"] == "QInt8" and quantization["per_channel"] is True
    assert len(quantization["fp32_nodes"]) == 2  # pre_classifier and classifier


def test_the_classifier_head_is_found_in_the_graph(exported) -> None:
    import onnx

    _, fp32, _ = exported
    graph = onnx.load(str(fp32 / "model.onnx"), load_external_data=False).graph
    nodes = {node.name: node for node in graph.node}

    head = head_nodes(graph)

    weights = [i for name in head for i in nodes[name].input if "classifier" in i]
    assert sorted(weights) == ["inner.classifier.weight", "inner.pre_classifier.weight"]


def test_the_side_files_the_exporter_writes_are_listed(tmp_path) -> None:
    from sentiment_pipeline.models.conversion.onnx_export import graph_files

    for name in ("model.onnx", "model.onnx.data"):
        (tmp_path / name).write_bytes(b"x")
    assert graph_files(tmp_path) == {"model": "model.onnx", "external_data": "model.onnx.data"}


def test_reduce_range_auto_follows_the_cpus_vnni_flags() -> None:
    with_vnni = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"
    without = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"
    assert reduce_range("auto", without) is True
    assert reduce_range("auto", with_vnni) is False
    assert reduce_range("auto", "flags : avx_vnni\n") is False
    assert reduce_range("true", with_vnni) is True and reduce_range("false", without) is False


def test_a_manifest_naming_a_file_outside_the_folder_is_refused(exported, tmp_path) -> None:
    _, fp32, _ = exported
    folder = _copy(fp32, tmp_path)
    manifest = read_manifest(folder)
    files = {**manifest.files, "external_data": "../outside.data"}
    write_manifest(folder, manifest.model_copy(update={"files": files}))
    with pytest.raises(ArtifactError, match=r"names the file '\.\./outside\.data'; a manifest"):
        load_model(folder)


@pytest.fixture
def side_file(exported, tmp_path) -> Path:
    """The fp32 export with its weights moved to a side file, as the exporter writes above 2 GB."""
    import onnx

    _, fp32, _ = exported
    folder = _copy(fp32, tmp_path, "side")
    graph = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(graph, str(folder / "model.onnx"), save_as_external_data=True,
                    location="model.onnx.data")
    manifest = read_manifest(folder)
    files = {**manifest.files, "external_data": "model.onnx.data"}
    write_manifest(folder, manifest.model_copy(update={"files": files}))
    return folder


def test_a_graph_with_its_weights_in_a_side_file_loads(exported, side_file) -> None:
    assert (side_file / "model.onnx.data").stat().st_size > (side_file / "model.onnx").stat(
    ).st_size
    np.testing.assert_allclose(
        load_model(side_file).raw_scores(TEXTS), load_model(exported[1]).raw_scores(TEXTS)
    )


def test_a_missing_or_outside_side_file_is_refused(side_file, tmp_path) -> None:
    outside = tmp_path / "weights.data"
    shutil.move(side_file / "model.onnx.data", outside)
    with pytest.raises(ArtifactError, match=r"lists model.onnx.data as its external_data .*"
                       "missing"):
        load_model(side_file)
    (side_file / "model.onnx.data").symlink_to(outside)
    with pytest.raises(ArtifactError, match=r"model.onnx.data is a symbolic link to .*; a model"):
        load_model(side_file)


def test_a_tokenizer_file_linking_out_of_the_folder_is_refused(exported, tmp_path) -> None:
    _, fp32, _ = exported
    folder = _copy(fp32, tmp_path)
    outside = tmp_path / "tokenizer.json"
    shutil.move(folder / "tokenizer.json", outside)
    (folder / "tokenizer.json").symlink_to(outside)
    with pytest.raises(ArtifactError, match=r"tokenizer.json is a symbolic link to .*; a model"):
        load_model(folder)


def test_a_damaged_graph_is_one_artifact_error(exported, tmp_path) -> None:
    _, fp32, int8 = exported
    damaged = _copy(int8, tmp_path, "damaged")
    (damaged / "model.onnx").write_bytes(b"\x08\x07garbage" * 64)
    with pytest.raises(ArtifactError, match=r"cannot load the ONNX model .*damaged.*model.onnx"):
        load_model(damaged)
    truncated = _copy(fp32, tmp_path, "truncated")
    data = (fp32 / "model.onnx").read_bytes()
    (truncated / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"cannot load the ONNX model .*truncated"):
        load_model(truncated)
    missing = _copy(fp32, tmp_path, "missing")
    (missing / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"lists model.onnx as its model .*missing"):
        load_model(missing)


def test_a_graph_with_another_number_of_classes_is_refused(exported, tmp_path) -> None:
    _, _, int8 = exported
    folder = _copy(int8, tmp_path)
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(update={"labels": ["neg", "pos"]}))
    with pytest.raises(ArtifactError, match="outputs 3 scores per text but its manifest lists 2"):
        load_model(folder)


def test_without_onnxruntime_the_error_says_what_to_install(exported, monkeypatch) -> None:
    _, fp32, _ = exported
    from sentiment_pipeline.models import artifacts

    monkeypatch.delitem(sys.modules, "sentiment_pipeline.models.artifacts.onnx_model")
    monkeypatch.delattr(artifacts, "onnx_model")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(
        ArtifactError,
        match=r"holds an ONNX model but onnxruntime or tokenizers is not installed .*"
        r"pip install sentiment-pipeline, whose dependencies they are",
    ):
        load_model(fp32)


def test_export_refuses_a_folder_that_is_not_a_transformers_model(tmp_path) -> None:
    from tiny_sklearn import save_tiny_model

    save_tiny_model(tmp_path / "baseline")
    with pytest.raises(ArtifactError, match=r"is a sklearn model .*takes a transformers model"):
        export_transformers(tmp_path / "baseline", tmp_path / "out", OnnxExportConfig())
    assert not (tmp_path / "out").exists()


def test_quantisation_takes_only_an_fp32_export(exported, tmp_path) -> None:
    source, _, int8 = exported
    for folder in (source, int8):
        with pytest.raises(ArtifactError, match="int8 quantisation takes an fp32 onnx folder"):
            quantize_int8(folder, tmp_path / "out", OnnxExportConfig())


def test_no_pickle_and_no_temp_folders_are_left(exported) -> None:
    _, fp32, int8 = exported
    for folder in (fp32, int8):
        names = {p.name for p in folder.iterdir()}
        assert not any(n.endswith((".bin", ".pkl", ".pt")) for n in names)
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
        payload = json.loads((folder / "model.json").read_text())
        assert payload["kind"] == "onnx"


def test_sessions_do_not_spin() -> None:
    """Idle ONNX Runtime threads sleep: a serving process needs its cores for the event loop."""
    from sentiment_pipeline.models.artifacts.onnx_model import session_options

    options = session_options(2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2
