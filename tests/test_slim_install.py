"""The core install, without the extras (torch, DVC, Optuna...), runs serve, predict, analyze."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sentiment_pipeline.cli import app, common
from sentiment_pipeline.models.artifacts.loader import TorchMissing, load_model
from sentiment_pipeline.models.artifacts.manifest import (
    read_manifest,
    write_manifest,
)
from server_process import BIN, call, serving
from tiny_sklearn import save_tiny_model

HERE = Path(__file__).resolve().parent
# The libraries of the extras (pipeline, transformers, onnx) and MLflow's server side, which the
# full `mlflow` adds to mlflow-skinny. matplotlib stays: the core draws the insights' charts.
BLOCKED = (
    "torch", "transformers", "accelerate", "safetensors", "onnx", "onnxscript", "dvc", "optuna",
    "lightgbm", "ruamel", "sqlalchemy", "alembic", "flask", "mlflow.server",
)
SERVING_MODULES = (
    "sentiment_pipeline.cli", "sentiment_pipeline.cli.inference", "sentiment_pipeline.predict",
    "sentiment_pipeline.serving.server", "sentiment_pipeline.insights.pipeline",
    "sentiment_pipeline.registry.opening", "sentiment_pipeline.models.artifacts.onnx_model",
    "sentiment_pipeline.models.artifacts.sklearn_model",
)
TEXTS = ["the flight was delayed three hours", "great crew, thank you!"]

runner = CliRunner()


def blocked(name: str) -> bool:
    return any(name == b or name.startswith(f"{b}.") for b in BLOCKED)


def without_extras(report: Path | None = None) -> dict[str, str]:
    """The environment of a subprocess on a core install: BLOCKED cannot be imported."""
    path = os.pathsep.join(p for p in (str(HERE / "without_extras"),
                                       os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "BLOCK_IMPORTS": ",".join(BLOCKED)}
    if report is not None:
        env["BLOCK_IMPORTS_REPORT"] = str(report)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sentiment-pipeline"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error of a command that failed as it should: exit 1, one line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and not result.stdout
    return lines[0]


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_serving_modules_import_no_library_of_an_extra() -> None:
    imports = "; ".join(f"import {module}" for module in SERVING_MODULES)
    result = python(f"import json, sys; {imports}; print(json.dumps(sorted(sys.modules)))")

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "sentiment_pipeline.serving.app" in loaded and "onnxruntime" in loaded
    assert [name for name in loaded if blocked(name)] == []


def test_the_blocker_makes_a_library_missing_as_an_uninstalled_one_is() -> None:
    result = python(
        "import importlib.util, sklearn, mlflow\n"
        "assert importlib.util.find_spec('optuna') is None\n"
        "assert importlib.util.find_spec('sklearn') is not None\n"
        "import mlflow.server",
        without_extras(),
    )
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'mlflow.server'" in result.stderr


def test_the_pipeline_commands_name_the_extra_they_need(project, monkeypatch) -> None:
    monkeypatch.setattr(common, "installed", lambda module: module != "dvc")
    for command in (["run"], ["stage", "ingest"], ["tune", "lightgbm"]):
        result = runner.invoke(app, command)

        assert result.exit_code == 1, result.output
        assert result.output == (
            f"error: `sentiment-pipeline {command[0]}` needs the pipeline extra (dvc is not "
            "installed); pip install 'sentiment-pipeline[pipeline]'\n"
        )
    assert not (project.root / "data").exists()


def test_a_database_store_without_mlflows_server_side_says_so() -> None:
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    from sentiment_pipeline.registry.lookup import RegistryUnavailable, registry_error

    refusal = UnsupportedModelRegistryStoreURIException("sqlite:///mlruns.db", ["http"])
    error = registry_error(refusal, "models:/x@champion", "sqlite:///mlruns.db")
    assert isinstance(error, RegistryUnavailable)
    assert str(error) == (
        "sqlite:///mlruns.db is a database store, which MLflow reads only with its server side "
        "installed (pip install 'sentiment-pipeline[pipeline]'); or set MLFLOW_TRACKING_URI to "
        "an MLflow server (http://host:port)"
    )


@pytest.fixture
def no_torch(monkeypatch) -> None:
    """The transformers kind's module cannot be imported in this process."""
    from sentiment_pipeline.models import artifacts

    monkeypatch.delitem(sys.modules, "sentiment_pipeline.models.artifacts.transformers_model",
                        raising=False)
    monkeypatch.delattr(artifacts, "transformers_model", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # import raises ImportError


def test_a_transformers_folder_without_torch_says_how_to_export_it(
    exported, tmp_path, no_torch
) -> None:
    source = tmp_path / "my model"
    shutil.copytree(exported[0], source)

    with pytest.raises(TorchMissing) as caught:
        load_model(source)

    assert str(caught.value) == (
        f"{source} is a transformers model, which needs torch and transformers (import of torch "
        "halted; None in sys.modules); to run it without them, export it to ONNX where they are "
        f"installed (sentiment-pipeline export onnx --model '{source}' --quantize int8) and pass "
        f"--model {tmp_path / 'my model_onnx_int8'}; or pip install "
        "'sentiment-pipeline[transformers]'"
    )


@pytest.mark.parametrize("names", [("x", "x_onnx_int8", "x_onnx"),
                                   ("distilbert_model", "distilbert_onnx_int8", "distilbert_onnx")])
def test_a_transformers_folder_without_torch_names_its_export_beside_it(
    exported, tmp_path, no_torch, names
) -> None:
    source, fp32, int8 = exported
    folder, int8_copy, fp32_copy = (tmp_path / name for name in names)
    for original, copy in ((source, folder), (fp32, fp32_copy)):
        shutil.copytree(original, copy)

    with pytest.raises(TorchMissing, match=re.escape(
        f"its ONNX export {fp32_copy} runs without them: pass --model {fp32_copy}; or pip install"
    )):
        load_model(folder)
    shutil.copytree(int8, int8_copy)
    with pytest.raises(TorchMissing, match=re.escape(f"pass --model {int8_copy};")):
        load_model(folder)
    # An export of another version of the model is not its export.
    manifest = read_manifest(int8_copy)
    write_manifest(int8_copy, manifest.model_copy(update={"source_hash": "sha256:other"}))
    with pytest.raises(TorchMissing, match=re.escape(f"pass --model {fp32_copy};")):
        load_model(folder)


def test_predict_names_the_export_a_champion_came_with(exported, tmp_path, no_torch) -> None:
    from sentiment_pipeline.registry.opening import load
    from sentiment_pipeline.registry.resolve import Folder, ResolvedModel

    source, _, int8 = exported
    resolved = ResolvedModel(
        path=source, manifest=read_manifest(source), name="distilbert", source=str(source),
        variants={"onnx-int8": Folder(path=int8, manifest=read_manifest(int8))},
    )
    with pytest.raises(TorchMissing, match=re.escape(f"its ONNX export {int8} runs without")):
        load(resolved)  # predict and analyze: the folder itself
    assert load(resolved, "auto").backend == "onnx-int8"  # serve: the export, by its rule


def reports(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("report.*"))]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_predict_and_analyze_run_without_the_extras(exported, tmp_path) -> None:
    source, _, int8 = exported
    save_tiny_model(tmp_path / "baseline")
    shutil.copytree(int8, tmp_path / "int8")
    shutil.copytree(source, tmp_path / "alone" / "distilbert_model")
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "comments.csv", index=False)
    (tmp_path / "reports").mkdir()
    env = without_extras(tmp_path / "reports" / "report")

    result = cli("--help", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "serve" in result.stdout, result.stderr
    for model in (["--model", "baseline", "--trust"], ["--model", "int8"]):
        result = cli("predict", *model, *TEXTS, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert TEXTS[0] in result.stdout and "p_negative" in result.stdout
        result = cli("analyze", *model, "--input", "comments.csv", "--json", "out.json",
                     "--html", "out.html", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert len(json.loads((tmp_path / "out.json").read_text())["comments"]) == len(TEXTS)
        assert "<svg" in (tmp_path / "out.html").read_text() or "data:image/svg" in (
            tmp_path / "out.html").read_text()
        with serving([*model], cwd=tmp_path, env=env) as served:
            assert call(served.port, "/health")[0] == 200
            status, body = call(served.port, "/predict", {"inputs": TEXTS[0]})
            assert status == 200 and {row["label"] for row in json.loads(body)} == {
                "negative", "neutral", "positive"}
            status, body = call(served.port, "/invocations", {"inputs": TEXTS})
            assert status == 200 and len(json.loads(body)["predictions"]) == len(TEXTS)
        assert served.process.returncode == 0, served.log.read_text()

    alone = tmp_path / "alone" / "distilbert_model"
    for command in ("predict", "serve"):
        args = ["x"] if command == "predict" else []
        line = one_line_error(cli(command, "--model", str(alone), *args, cwd=tmp_path, env=env))
        assert line == (
            f"error: {alone} is a transformers model, which needs torch and transformers (No "
            "module named 'torch' (blocked by the test)); to run it without them, export it to "
            "ONNX where they are installed (sentiment-pipeline export onnx --model "
            f"{alone} --quantize int8) and pass --model {alone}_onnx_int8; or pip install "
            "'sentiment-pipeline[transformers]'"
        )
    line = one_line_error(cli("run", cwd=tmp_path, env=env))
    assert "needs the pipeline extra (dvc, optuna, lightgbm, ruamel.yaml, sqlalchemy, alembic" in (
        line) and line.endswith("pip install 'sentiment-pipeline[pipeline]'")

    ran = reports(tmp_path / "reports")
    commands = [" ".join(r["argv"][1:2]) for r in ran]
    assert commands.count("predict") == 3 and commands.count("serve") == 3, commands
    assert commands.count("analyze") == 2 and "run" in commands
    assert all(r["blocked_in_sys_modules"] == [] for r in ran), ran


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_champion_comes_from_an_mlflow_server_through_the_client_alone(
    exported, tmp_path, monkeypatch
) -> None:
    """A transformer registered with its exports, served and predicted from the registry by
    URI: serve takes its int8 export by serve.backend auto; predict names that export."""
    from mlflow_server import mlflow_server
    from sentiment_pipeline.config.register import RegisterConfig
    from sentiment_pipeline.evaluation.best_model import BestModel
    from sentiment_pipeline.io import write_json
    from sentiment_pipeline.paths import ProjectPaths
    from sentiment_pipeline.registry import register_model
    from sentiment_pipeline.settings import get_settings

    source, fp32, int8 = exported
    paths = ProjectPaths.at(tmp_path / "trained")
    for original, target in ((source, paths.distilbert_model), (fp32, paths.distilbert_onnx),
                             (int8, paths.distilbert_onnx_int8)):
        shutil.copytree(original, target)
    relative = {key: folder.relative_to(paths.root).as_posix()
                for key, folder in paths.model_variants("distilbert").items()}
    write_json(paths.best_model, BestModel(
        name="distilbert", path=paths.distilbert_model.relative_to(paths.root).as_posix(),
        kind="transformers", primary_metric="macro_f1", score=0.9, metrics={"macro_f1": 0.9},
        mlflow_run_id=None, evaluation_run_id=None, evaluated=["distilbert"], skipped={},
        variants=relative,
    ).model_dump(mode="json"))
    serving_dir = tmp_path / "serving"
    serving_dir.mkdir()
    (tmp_path / "reports").mkdir()
    with mlflow_server(tmp_path / "mlflow") as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        get_settings.cache_clear()
        config = RegisterConfig(min_score=0.5)
        assert register_model.run(config, paths).version == "1"
        get_settings.cache_clear()
        env = {**without_extras(tmp_path / "reports" / "report"), "MLFLOW_TRACKING_URI": url}

        with serving([], cwd=serving_dir, env=env) as served:  # the default: the champion
            status, body = call(served.port, "/info")
            info = json.loads(body)
            assert status == 200
            assert (info["model_version"], info["backend"]) == ("1", "onnx-int8")
            assert call(served.port, "/predict", {"inputs": TEXTS[0]})[0] == 200
        line = one_line_error(cli("predict", "--model", f"models:/{config.model_name}@champion",
                                  "x", cwd=serving_dir, env=env))
    cached = serving_dir / ".cache" / "registry" / config.model_name / "1"
    assert f"its ONNX export {cached / 'onnx-int8'} runs without them" in line
    assert all(r["blocked_in_sys_modules"] == [] for r in reports(tmp_path / "reports"))
