"""Every path the pipeline reads or writes, relative to one project root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    """Artifact locations of a project; the layout is the DVC contract in dvc.yaml."""

    root: Path

    @classmethod
    def at(cls, root: str | Path = ".") -> ProjectPaths:
        return cls(Path(root).resolve())

    def resolve(self, path: str | Path) -> Path:
        """A user-given path, relative to the project root unless absolute."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self.root / path

    # --- data -----------------------------------------------------------
    @property
    def source_stamp(self) -> Path:
        """What data.source is now (file hash or HTTP validators); ingest depends on it."""
        return self.root / "data" / "raw" / "source.json"

    @property
    def source_hash_cache(self) -> Path:
        """size, mtime and sha256 of the last hashed local source (not a DVC out)."""
        return self.root / "data" / "raw" / ".source_hash.json"

    @property
    def downloads_dir(self) -> Path:
        """Downloaded sources, each with a `<name>.http.json` of its HTTP validators."""
        return self.root / "data" / "raw" / "downloads"

    @property
    def raw_dataset(self) -> Path:
        return self.root / "data" / "raw" / "dataset.parquet"

    @property
    def validated(self) -> Path:
        return self.root / "data" / "interim" / "validated.parquet"

    @property
    def rejected(self) -> Path:
        return self.root / "data" / "interim" / "rejected.parquet"

    @property
    def validation_report(self) -> Path:
        return self.root / "reports" / "data_validation.json"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    def split(self, name: str) -> Path:
        return self.processed_dir / f"{name}.parquet"

    @property
    def labels(self) -> Path:
        return self.processed_dir / "labels.json"

    @property
    def preparation_report(self) -> Path:
        """Split sizes, where each split came from, and the rows dropped on the way."""
        return self.root / "reports" / "data_preparation.json"

    # --- aspect data (prepare_aspects) -------------------------------------
    @property
    def aspect_data_dir(self) -> Path:
        """The aspect model's splits and labels.json."""
        return self.processed_dir / "aspects"

    def aspects_split(self, name: str) -> Path:
        return self.aspect_data_dir / f"{name}.parquet"

    @property
    def aspects_labels(self) -> Path:
        return self.aspect_data_dir / "labels.json"

    @property
    def aspects_rejected(self) -> Path:
        return self.root / "data" / "interim" / "aspects_rejected.parquet"

    @property
    def aspects_report(self) -> Path:
        """Rows read, rejected (by reason), kept per split and class; or why it was skipped."""
        return self.root / "reports" / "aspects_validation.json"

    # --- models ---------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def baseline_model(self) -> Path:
        return self.models_dir / "baseline" / "logistic_baseline"

    @property
    def baseline_metrics(self) -> Path:
        return self.models_dir / "baseline" / "baseline_metrics.json"

    @property
    def lightgbm_model(self) -> Path:
        return self.models_dir / "advanced" / "lightgbm_model"

    @property
    def lightgbm_metrics(self) -> Path:
        return self.models_dir / "advanced" / "lightgbm_metrics.json"

    @property
    def lightgbm_results(self) -> Path:
        return self.models_dir / "advanced" / "lightgbm_results"

    @property
    def distilbert_model(self) -> Path:
        return self.models_dir / "advanced" / "distilbert_model"

    @property
    def distilbert_results(self) -> Path:
        return self.models_dir / "advanced" / "distilbert_results"

    @property
    def distilbert_metrics(self) -> Path:
        return self.models_dir / "advanced" / "distilbert_metrics.json"

    @property
    def distilbert_onnx(self) -> Path:
        """The fine-tuned transformer exported to ONNX (fp32), by export_onnx."""
        return self.models_dir / "advanced" / "distilbert_onnx"

    @property
    def distilbert_onnx_int8(self) -> Path:
        """Its dynamically quantised int8 copy, by export_onnx."""
        return self.models_dir / "advanced" / "distilbert_onnx_int8"

    def model_variants(self, name: str) -> dict[str, Path]:
        """The exports of a model named in evaluation.models, by serve.backend name."""
        if name == "distilbert":
            return {"onnx": self.distilbert_onnx, "onnx-int8": self.distilbert_onnx_int8}
        return {}

    def model_dir(self, name: str) -> Path:
        """The artifact directory of a model named in evaluation.models."""
        return {
            "baseline": self.baseline_model,
            "lightgbm": self.lightgbm_model,
            "distilbert": self.distilbert_model,
        }[name]

    # --- aspect models (train_aspects ... register_aspects) ------------
    @property
    def aspect_models_dir(self) -> Path:
        return self.models_dir / "aspects"

    @property
    def aspect_model(self) -> Path:
        """The fine-tuned pair classifier, by train_aspects."""
        return self.aspect_models_dir / "aspect_model"

    @property
    def aspect_results(self) -> Path:
        return self.aspect_models_dir / "aspect_results"

    @property
    def aspect_metrics(self) -> Path:
        return self.aspect_models_dir / "aspect_metrics.json"

    @property
    def pair_baseline(self) -> Path:
        """The TF-IDF + logistic-regression pair baseline, by train_aspect_baseline."""
        return self.aspect_models_dir / "pair_baseline"

    @property
    def aspect_onnx(self) -> Path:
        """The aspect model exported to ONNX (fp32), by export_aspects_onnx."""
        return self.aspect_models_dir / "aspect_onnx"

    @property
    def aspect_onnx_int8(self) -> Path:
        """Its dynamically quantised int8 copy, by export_aspects_onnx."""
        return self.aspect_models_dir / "aspect_onnx_int8"

    @property
    def aspect_evaluation_dir(self) -> Path:
        """evaluate_aspects' report; beside reports/evaluation, since DVC refuses an out inside
        another stage's out (model_evaluation's)."""
        return self.root / "reports" / "aspects_evaluation"

    @property
    def aspect_best_model(self) -> Path:
        """The aspect champion record, by evaluate_aspects, read by register_aspects."""
        return self.aspect_models_dir / "best_model.json"

    @property
    def aspect_registration(self) -> Path:
        return self.root / "reports" / "aspects_registration.json"

    # --- evaluation and registry ----------------------------------------
    @property
    def evaluation_dir(self) -> Path:
        return self.root / "reports" / "evaluation"

    @property
    def best_model(self) -> Path:
        return self.models_dir / "evaluation" / "best_model.json"

    @property
    def registration(self) -> Path:
        return self.root / "reports" / "registration.json"

    # --- local state outside DVC outs -----------------------------------
    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlruns.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def dvc_cache(self) -> Path:
        """DVC's cache; with `cache.type: symlink` the files of a model folder link into it."""
        return self.root / ".dvc" / "cache"
