"""train_distilbert: decisions before training, the search space, placeholders and the CLI."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import optuna
import pytest
import torch
from typer.testing import CliRunner

from sentiment_pipeline.cli import app
from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.models import train_distilbert as dt
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import read_manifest
from sentiment_pipeline.models.distilbert import device as dv
from sentiment_pipeline.models.distilbert import tuned
from sentiment_pipeline.models.distilbert.trainer import effective_max_length
from synthetic import LABELS


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# --- device and precision ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "allow_cpu", "cuda", "expected"),
    [
        ("auto", False, False, None),
        ("auto", True, False, "cpu"),
        ("auto", False, True, "cuda"),
        ("cpu", False, True, "cpu"),
        ("cuda", False, True, "cuda"),
    ],
)
def test_resolve_device(device: str, allow_cpu: bool, cuda: bool, expected: str | None) -> None:
    config = DistilBERTConfig(device=device, allow_cpu=allow_cpu)
    assert dv.resolve_device(config, cuda_available=cuda) == expected


def test_resolve_device_cuda_without_cuda_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.distilbert\.device is 'cuda'.*'auto'.*'cpu'"):
        dv.resolve_device(DistilBERTConfig(device="cuda", allow_cpu=True), cuda_available=False)


@pytest.mark.parametrize(
    ("setting", "device", "bf16", "expected"),
    [
        ("auto", "cuda", True, "bf16"),
        ("auto", "cuda", False, "fp16"),
        ("fp16", "cuda", True, "fp16"),
        ("no", "cuda", True, "fp32"),
        ("auto", "cpu", False, "fp32"),
        ("bf16", "cpu", True, "fp32"),
    ],
)
def test_resolve_precision(setting: str, device: str, bf16: bool, expected: str) -> None:
    assert dv.resolve_precision(setting, device, bf16) == expected


def test_bf16_on_a_gpu_without_bf16_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mixed_precision is 'bf16'.*'auto', 'fp16' or 'no'"):
        dv.resolve_precision("bf16", "cuda", bf16_supported=False)


# --- study helpers -------------------------------------------------------------------------


def test_search_space_stays_inside_the_configured_bounds_and_names_trainer_arguments() -> None:
    from transformers import TrainingArguments

    config = DistilBERTConfig(lr=(1e-5, 1e-4), batch_size=[8, 16], epochs=(1, 2))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = tuned.search_space(trial, config)
        assert 1e-5 <= params.learning_rate <= 1e-4
        assert params.per_device_train_batch_size in (8, 16)
        assert params.num_train_epochs in (1, 2)
        assert 0 <= params.weight_decay <= 0.1 and 0 <= params.warmup_steps <= 0.1
    # One name from Optuna to the Trainer: the trial's params are the model's fields, and each
    # is a TrainingArguments argument that takes the value as it is.
    assert trial.params == params.model_dump()
    arguments = TrainingArguments(output_dir="unused", **params.model_dump())
    assert arguments.learning_rate == params.learning_rate
    assert arguments.warmup_steps == params.warmup_steps


def test_max_length_is_capped_at_the_model_positions(caplog) -> None:
    assert effective_max_length(32, 64) == 32
    assert effective_max_length(512, None) == 512
    assert effective_max_length(128, 64) == 64
    assert "max_length=128 exceeds the model's 64 positions" in caplog.text


# --- placeholders --------------------------------------------------------------------------


def _assert_placeholders(paths, reason: str) -> None:
    manifest = read_manifest(paths.distilbert_model)
    assert (manifest.kind, manifest.status, manifest.reason) == ("placeholder", "skipped", reason)
    assert manifest.labels == LABELS
    study = json.loads((paths.distilbert_results / "study.json").read_text())
    assert (study["status"], study["reason"]) == ("skipped", reason)
    assert [p.name for p in paths.distilbert_results.iterdir()] == ["study.json"]
    metrics = json.loads(paths.distilbert_metrics.read_text())
    assert metrics == study
    assert metrics["best_val_macro_f1"] is None and metrics["best_val_accuracy"] is None


def test_disabled_writes_placeholders(processed, manager) -> None:
    config = manager(processed, "train.distilbert.enable=false").config.train.distilbert
    result = dt.run(config, processed)
    assert (result.status, result.reason) == ("skipped", "disabled")
    _assert_placeholders(processed, "disabled")
    assert load_model(processed.distilbert_model).manifest.reason == "disabled"


def test_no_cuda_without_allow_cpu_writes_placeholders_and_says_how_to_train(
    processed, manager, no_cuda, caplog
) -> None:
    result = dt.run(manager(processed).config.train.distilbert, processed)
    assert result.reason == "no_cuda"
    _assert_placeholders(processed, "no_cuda")
    assert "--set train.distilbert.allow_cpu=true" in caplog.text
    assert not processed.optuna_db.exists()


def test_cli_device_cuda_without_cuda_exits_2(processed, no_cuda) -> None:
    result = CliRunner().invoke(
        app, ["stage", "train_distilbert", "--set", "train.distilbert.device=cuda"]
    )
    assert result.exit_code == 2
    assert "train.distilbert.device is 'cuda'" in result.output
    assert not processed.distilbert_model.exists()


def test_unloadable_model_names_the_key_and_the_local_directory_fix(processed, manager) -> None:
    missing = processed.root / "no" / "such" / "model"
    config = manager(
        processed,
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.model_name_or_path={missing}",
    ).config.train.distilbert
    expected = r"train\.distilbert\.model_name_or_path=.*a local directory .* works"
    with pytest.raises(PipelineError, match=expected):
        dt.run(config, processed)


def test_missing_packages_write_placeholders_and_say_what_to_install(
    processed, manager, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(tuned, "missing_dependencies", lambda: ["torch", "transformers"])
    config = manager(processed, "train.distilbert.enable=true").config.train.distilbert

    with caplog.at_level(logging.WARNING):
        dt.run(config, processed)

    _assert_placeholders(processed, "missing_dependency")
    assert "torch and transformers not installed" in caplog.text


@pytest.mark.slow
def test_missing_torch_and_transformers_write_placeholders(processed) -> None:
    script = textwrap.dedent(
        """
        import importlib.abc
        import sys

        class Uninstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("torch", "transformers"):
                    raise ImportError(f"No module named {name!r}")

        sys.meta_path.insert(0, Uninstalled())
        import sentiment_pipeline.cli  # the CLI imports without them
        from sentiment_pipeline.config.manager import ConfigurationManager
        from sentiment_pipeline.models import train_distilbert as dt
        from sentiment_pipeline.paths import ProjectPaths
        config = ConfigurationManager("params.yaml", ["train.distilbert.enable=true"])
        result = dt.run(config.config.train.distilbert, ProjectPaths.at("."))
        assert "torch" not in sys.modules
        print("REASON", result.reason)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=processed.root, capture_output=True, text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "REASON missing_dependency" in out.stdout
    assert "torch and transformers not installed" in out.stderr
    assert "pip install 'sentiment-pipeline[transformers]'" in out.stderr
    _assert_placeholders(processed, "missing_dependency")


def test_the_seeded_search_still_proposes_the_trials_of_the_recorded_benchmark(repo_root) -> None:
    """BENCHMARKS.md's pruning study (made before the parameters took the Trainer's names): a
    reordered or renamed search space would silently make the benchmark propose other trials."""
    recorded = json.loads((repo_root / "benchmarks/results/pruning_curves.json").read_text())
    names = {"lr": "learning_rate", "batch_size": "per_device_train_batch_size",
             "weight_decay": "weight_decay", "epochs": "num_train_epochs",
             "warmup_ratio": "warmup_steps"}
    config = DistilBERTConfig(lr=(1e-5, 1e-4), batch_size=[16, 32])
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=42, n_startup_trials=5)
    )
    for curve in recorded["curves"][:5]:
        params = tuned.search_space(study.ask(), config).model_dump()
        expected = {names[k]: v for k, v in curve["params"].items()}
        assert params == pytest.approx(expected)
        study.tell(study.trials[-1].number, curve["values"][-1])
