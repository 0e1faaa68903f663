"""The export_onnx stage and `sentiment-pipeline export onnx`: exports, placeholders, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import configure
from sentiment_pipeline.cli import app
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.models import export_onnx
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    content_hash,
    read_manifest,
)
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.models.conversion import command, export_folders, int8, onnx_export
from sentiment_pipeline.stages import run_stage
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

runner = CliRunner()


def _needs_onnx() -> None:
    for name in ("onnxruntime", "onnxscript", "transformers"):
        pytest.importorskip(name)


def _manifests(project) -> tuple:
    return read_manifest(project.distilbert_onnx), read_manifest(project.distilbert_onnx_int8)


@pytest.mark.slow
def test_the_stage_exports_fp32_and_int8_of_the_trained_transformer(
    project, tiny_transformer_model
) -> None:
    _needs_onnx()
    shutil.copytree(tiny_transformer_model, project.distilbert_model)

    result = run_stage("export_onnx", configure(project).config, project)

    fp32, int8 = _manifests(project)
    assert (fp32.kind, fp32.precision) == ("onnx", "fp32")
    assert (int8.kind, int8.precision) == ("onnx", "int8")
    source_hash = content_hash(project.distilbert_model)
    assert fp32.source_hash == int8.source_hash == source_hash
    assert result == export_onnx.ExportResult(
        source_hash=source_hash, fp32="exported", int8="exported"
    )
    assert load_model(project.distilbert_onnx_int8, expected_labels=LABELS).predict(["ok"])[0] in (
        LABELS
    )
    assert not [p for p in project.distilbert_onnx.parent.iterdir() if p.name.startswith(".")]


def test_a_placeholder_source_gives_placeholders_with_its_reason(project) -> None:
    save_placeholder(project.distilbert_model, "distilbert", LABELS, "no_cuda")

    result = export_onnx.run(OnnxExportConfig(), project)

    for manifest in _manifests(project):
        assert (manifest.kind, manifest.reason) == ("placeholder", "no_cuda")
        assert manifest.labels == LABELS
    assert result.fp32 == result.int8 == "skipped: no_cuda"
    assert read_manifest(project.distilbert_onnx_int8).params == {"precision": "int8"}


def test_disabled_export_writes_placeholders(project, tiny_transformer_model) -> None:
    shutil.copytree(tiny_transformer_model, project.distilbert_model)

    export_onnx.run(OnnxExportConfig(enable=False), project)

    assert [m.reason for m in _manifests(project)] == ["disabled", "disabled"]


def test_missing_packages_give_placeholders_that_say_what_to_install(
    project, tiny_transformer_model, monkeypatch
) -> None:
    shutil.copytree(tiny_transformer_model, project.distilbert_model)
    monkeypatch.setattr(export_folders, "missing_dependencies", lambda: ["onnxscript"])

    result = export_onnx.run(OnnxExportConfig(), project)

    expected = (
        "missing_dependency: onnxscript not installed; "
        "pip install 'sentiment-pipeline[transformers,onnx]'"
    )
    assert [m.reason for m in _manifests(project)] == [expected, expected]
    assert result.int8 == f"skipped: {expected}"


def test_quantize_false_leaves_an_int8_placeholder(
    project, tiny_transformer_model, monkeypatch
) -> None:
    shutil.copytree(tiny_transformer_model, project.distilbert_model)
    calls = []
    monkeypatch.setattr(export_folders, "missing_dependencies", lambda: [])
    monkeypatch.setattr(
        export_folders, "export_transformers",
        lambda source, target, config, project: calls.append((source, target)) or
        save_tiny_model(target) or read_manifest(target),  # stands in for the real export
    )

    result = export_onnx.run(OnnxExportConfig(quantize=False), project)

    assert calls == [(project.distilbert_model, project.distilbert_onnx)]
    int8 = read_manifest(project.distilbert_onnx_int8)
    assert (int8.kind, int8.reason) == ("placeholder", "disabled: export.onnx.quantize is false")
    assert result.int8 == "skipped: disabled: export.onnx.quantize is false"


def test_a_missing_source_names_the_folder(project) -> None:
    with pytest.raises(ArtifactError, match=r"no model directory at .*distilbert_model"):
        export_onnx.run(OnnxExportConfig(), project)


@pytest.mark.slow
def test_the_cli_exports_a_model_folder_beside_it(project, tiny_transformer_model) -> None:
    _needs_onnx()
    model = project.root / "mine"
    shutil.copytree(tiny_transformer_model, model)

    result = runner.invoke(app, ["export", "onnx", "--model", str(model), "--quantize", "int8"])

    assert result.exit_code == 0, result.output
    fp32, int8 = project.root / "mine_onnx", project.root / "mine_onnx_int8"
    assert f"wrote {fp32}" in result.output and f"wrote {int8}" in result.output
    assert read_manifest(fp32).precision == "fp32" and read_manifest(int8).precision == "int8"


def test_the_cli_refuses_a_model_that_is_not_a_transformer(project) -> None:
    save_tiny_model(project.root / "baseline")

    result = runner.invoke(app, ["export", "onnx", "--model", str(project.root / "baseline")])

    assert result.exit_code == 1
    assert "is a sklearn model ('baseline'); ONNX export takes a transformers model" in (
        result.output
    )
    assert not (project.root / "baseline_onnx").exists()


def test_an_output_inside_the_model_folder_is_refused(tiny_transformer_model, tmp_path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_transformer_model, model)
    for output in (model, model / "onnx", tmp_path):
        with pytest.raises(ArtifactError, match=r"--output .* overlaps the model directory"):
            command.export_command(model, output, quantize=False, config=OnnxExportConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_unknown_quantisation_is_refused(project, tiny_transformer_model) -> None:
    result = runner.invoke(
        app, ["export", "onnx", "--model", str(tiny_transformer_model), "--quantize", "int4"]
    )
    assert result.exit_code != 0 and "--quantize 'int4' is not supported" in result.output


def test_missing_dependencies_are_the_packages_that_cannot_be_found(monkeypatch) -> None:
    found = {"torch", "transformers", "onnxruntime"}
    monkeypatch.setattr(onnx_export.importlib.util, "find_spec",
                        lambda name: object() if name in found else None)
    assert onnx_export.missing_dependencies() == ["onnx", "onnxscript"]


def test_int8_dir_is_beside_the_fp32_folder(tmp_path: Path) -> None:
    assert int8.int8_dir(tmp_path / "x_onnx") == tmp_path / "x_onnx_int8"
