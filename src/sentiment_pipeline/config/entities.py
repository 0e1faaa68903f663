"""Typed, frozen configuration models: one per stage, all read from params.yaml."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REDDIT_URL = (
    "https://raw.githubusercontent.com/Himanshu-1703/reddit-sentiment-analysis/"
    "refs/heads/main/data/reddit.csv"
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


def _ordered_pair(value: tuple, low_positive: bool = False) -> tuple:
    low, high = value
    if low_positive and low <= 0:
        raise ValueError(f"the lower bound must be > 0, got {low}")
    if low > high:
        raise ValueError(f"expected [low, high] with low <= high, got [{low}, {high}]")
    return value


# Predefined splits: the data.* key of each optional source -> the split it is used as. Rows
# ingested from several sources carry the key they came from in the ORIGIN column.
PREDEFINED_SPLITS = {"val_source": "val", "test_source": "test"}
ORIGIN = "origin"


class DataConfig(_Frozen):
    """Where the raw data comes from and what a valid row is (ingest and validate stages)."""

    source: str = Field(REDDIT_URL, description="Local path or http(s) URL of the labelled data.")
    val_source: str | None = Field(
        None,
        min_length=1,
        description="Optional predefined validation set (local path or http(s) URL), read and "
        "validated like data.source and used as the val split as given (null: carved from "
        "data.source).",
    )
    test_source: str | None = Field(
        None,
        min_length=1,
        description="Optional predefined test set (e.g. a benchmark's published test set), read "
        "and validated like data.source and used as the test split as given (null: carved from "
        "data.source).",
    )
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = Field(
        "auto", description="File format; 'auto' picks it from the file extension."
    )
    encoding: str = Field(
        "auto",
        min_length=1,
        description="Text encoding of CSV/TSV/JSON Lines: 'auto' reads UTF-8 (with or without a "
        "BOM) and rejects rows that do not decode (bad_encoding); or any Python codec name.",
    )
    text_column: str = Field("clean_comment", min_length=1, description="Column holding the text.")
    label_column: str = Field("category", min_length=1, description="Column holding the label.")
    label_map: dict[str, str] = Field(
        default_factory=lambda: {"-1": "negative", "0": "neutral", "1": "positive"},
        description="Raw label -> class name. A raw label equal to a class name is kept as is.",
    )
    download_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for a download.")
    min_text_chars: int = Field(1, ge=1, description="Shortest accepted text, in characters.")
    max_text_chars: int = Field(5000, ge=1, description="Longest accepted text, in characters.")
    max_rejected_fraction: float = Field(
        0.2, ge=0, le=1, description="Fail validation when more rows than this are rejected."
    )
    min_rows_per_class: int = Field(
        10, ge=1, description="Fail validation when a class keeps fewer rows than this."
    )

    @field_validator("source", "val_source", "test_source")
    @classmethod
    def _local_or_http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # A one-letter scheme is a Windows drive ("C:\\data.csv"), not a URL.
        scheme = urlparse(value).scheme
        if len(scheme) > 1 and scheme not in ("http", "https"):
            raise ValueError(
                f"the scheme {scheme!r} is not supported; give an http(s) URL or a local path "
                "(relative to the project folder, or absolute)"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            "a".encode(value).decode(value)
        except LookupError as exc:
            raise ValueError(
                f"{value!r} is not a text encoding Python knows ({exc}); use auto (UTF-8) or a "
                "codec name such as latin-1, cp1252 or utf-16"
            ) from exc
        except (TypeError, AttributeError, UnicodeError) as exc:
            raise ValueError(f"{value!r} is not a text encoding ({exc}); use auto or e.g. latin-1")\
                from exc
        return value

    @field_validator("label_map", mode="before")
    @classmethod
    def _stringify_keys(cls, value: object) -> object:
        # YAML reads `-1: negative` with an int key; raw labels are compared as strings.
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check_lengths(self) -> DataConfig:
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"data.min_text_chars ({self.min_text_chars}) must not exceed "
                f"data.max_text_chars ({self.max_text_chars})"
            )
        return self

    @model_validator(mode="after")
    def _check_distinct_sources(self) -> DataConfig:
        seen: dict[str, str] = {}
        for key, location in self.sources().items():
            if location in seen:
                raise ValueError(
                    f"data.{key} and data.{seen[location]} are both {location!r}; a predefined "
                    "split must be another file than data.source and the other split (null: "
                    "carve it from data.source)"
                )
            seen[location] = key
        return self

    def sources(self) -> dict[str, str]:
        """data.source and each predefined split that is set, by key (source first)."""
        given = {key: getattr(self, key) for key in PREDEFINED_SPLITS}
        return {"source": self.source, **{k: v for k, v in given.items() if v is not None}}


class SplitConfig(_Frozen):
    """Stratified train/val/test split (prepare stage)."""

    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of rows for validation.")
    test_fraction: float = Field(0.15, gt=0, lt=1, description="Share of rows for the test set.")
    seed: int = Field(42, ge=0, description="Seed of the stratified shuffle.")

    @model_validator(mode="after")
    def _check_sum(self) -> SplitConfig:
        total = self.val_fraction + self.test_fraction
        if total >= 1:
            raise ValueError(
                f"split.val_fraction + split.test_fraction must be below 1 so that rows are left "
                f"for training, got {self.val_fraction} + {self.test_fraction} = {total:g}"
            )
        return self


class TfidfConfig(_Frozen):
    """TF-IDF features shared by the classical models."""

    ngram_range: tuple[int, int] = Field((1, 2), description="Word n-gram range [min, max].")
    max_features: int | None = Field(10000, ge=1, description="Vocabulary size cap (null: none).")
    min_df: int = Field(2, ge=1, description="Ignore terms in fewer documents than this.")
    sublinear_tf: bool = Field(True, description="Use 1 + log(tf).")

    @field_validator("ngram_range")
    @classmethod
    def _check_ngrams(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < 1:
            raise ValueError(f"n-grams start at 1, got {list(value)}")
        return _ordered_pair(value)


class BaselineConfig(TfidfConfig):
    """TF-IDF + LogisticRegression baseline (train_baseline stage)."""

    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="'balanced' re-weights classes by inverse frequency; null: none."
    )
    solver: Literal["lbfgs", "liblinear", "newton-cg", "saga", "sag"] = Field(
        "lbfgs", description="LogisticRegression solver."
    )
    max_iter: int = Field(1000, ge=1, description="Maximum solver iterations.")


class LightGBMConfig(_Frozen):
    """TF-IDF + LightGBM tuned with Optuna (train_lightgbm stage)."""

    tfidf: TfidfConfig = Field(default_factory=TfidfConfig, description="TF-IDF features.")
    n_trials: int = Field(20, ge=1, description="Optuna trials owed by the study.")
    timeout: float | None = Field(None, gt=0, description="Stop starting trials after this (s).")
    seed: int = Field(42, ge=0, description="Seed of the sampler and of LightGBM.")
    imbalance: Literal["class_weight", "none"] = Field(
        "class_weight", description="'class_weight' weights rows by inverse class frequency."
    )
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="Optuna pruner.")
    max_estimators: int = Field(1000, ge=1, description="Boosting rounds cap per trial.")
    early_stopping_rounds: int = Field(30, ge=1, description="Stop a trial after this many rounds")
    learning_rate: tuple[float, float] = Field((0.02, 0.3), description="Log-uniform bounds.")
    num_leaves: tuple[int, int] = Field((15, 127), description="Integer bounds.")
    min_child_samples: tuple[int, int] = Field((5, 100), description="Integer bounds.")
    colsample_bytree: tuple[float, float] = Field((0.3, 1.0), description="Uniform bounds.")
    reg_lambda: tuple[float, float] = Field((1e-3, 10.0), description="Log-uniform bounds.")
    threads: Literal["auto"] | int = Field(
        "auto",
        description="LightGBM (OpenMP) threads per trial; 'auto': chosen from the usable cores "
        "(1 on 2 cores or fewer). Not part of the study key.",
    )
    parallel_trials: Literal["auto"] | int = Field(
        "auto",
        description="Trials run at once in this process (threads); 'auto': chosen from the "
        "usable cores (1 on 2 cores or fewer). Not part of the study key.",
    )

    @field_validator("threads", "parallel_trials", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: object) -> object:
        if value == "auto":
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"expected auto or an integer >= 1, got {value!r}")
        return value

    @field_validator("learning_rate", "reg_lambda")
    @classmethod
    def _positive_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(value, low_positive=True)

    @field_validator("num_leaves", "min_child_samples")
    @classmethod
    def _int_bounds(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _ordered_pair(value, low_positive=True)

    @field_validator("colsample_bytree")
    @classmethod
    def _fraction_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1] <= 1:
            raise ValueError(f"expected 0 < low <= high <= 1, got {list(value)}")
        return value


class DistilBERTConfig(_Frozen):
    """Transformer fine-tuning tuned with Optuna (train_distilbert stage)."""

    enable: bool = Field(True, description="false: skip training and write placeholders.")
    model_name_or_path: str = Field(
        "distilbert-base-uncased",
        min_length=1,
        description="Hugging Face hub id or local directory of the encoder checkpoint.",
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="'auto': CUDA when present; 'cuda' is an error without CUDA."
    )
    allow_cpu: bool = Field(
        False, description="Train on the CPU when no CUDA device is there (else skip)."
    )
    n_trials: int = Field(10, ge=1, description="Optuna trials owed by the study.")
    timeout: float | None = Field(None, gt=0, description="Stop starting trials after this (s).")
    lr: tuple[float, float] = Field((1e-5, 1e-4), description="Learning-rate bounds (log scale).")
    batch_size: list[int] = Field([16, 32], min_length=1, description="Batch-size choices.")
    weight_decay: tuple[float, float] = Field((0.0, 0.1), description="Weight-decay bounds.")
    epochs: tuple[int, int] = Field((2, 4), description="Epoch bounds (integers).")
    warmup_ratio: tuple[float, float] = Field((0.0, 0.1), description="Warm-up share bounds.")
    max_length: int = Field(128, ge=8, le=4096, description="Truncate texts to this many tokens.")
    group_by_length: bool = Field(True, description="Batch texts of similar length together.")
    evals_per_epoch: int = Field(
        2,
        ge=1,
        le=20,
        description="Validation passes (pruner reports) per epoch, at even fractions of it.",
    )
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="Optuna pruner.")
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = Field(
        "auto", description="'auto': bf16 where the GPU supports it, else fp16; fp32 on the CPU."
    )
    max_train_samples: int | None = Field(None, ge=1, description="Use at most N training rows.")
    max_eval_samples: int | None = Field(None, ge=1, description="Use at most N validation rows.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size for evaluation.")
    seed: int = Field(42, ge=0, description="Seed of the sampler, the trainer and subsampling.")
    nproc_per_node: Literal["auto"] | int = Field(
        1,
        description="Data-parallel processes `python -m` (dvc repro) starts the stage in, under "
        "torchrun on this node; 'auto': one per visible GPU. batch_size is per process. Ignored "
        "when torchrun / accelerate launch started the stage.",
    )

    @field_validator("nproc_per_node", mode="before")
    @classmethod
    def _processes(cls, value: object) -> object:
        if value == "auto":
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            raise ValueError(f"expected auto or an integer from 1 to 1024, got {value!r}")
        return value

    @field_validator("lr")
    @classmethod
    def _lr_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(value, low_positive=True)

    @field_validator("weight_decay", "warmup_ratio")
    @classmethod
    def _unit_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] < 1:
            raise ValueError(f"expected 0 <= low <= high < 1, got {list(value)}")
        return value

    @field_validator("epochs")
    @classmethod
    def _epoch_bounds(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _ordered_pair(value, low_positive=True)

    @field_validator("batch_size")
    @classmethod
    def _batch_sizes(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError(f"batch sizes must be >= 1, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"batch sizes must be distinct, got {value}")
        return value


class EvaluationConfig(_Frozen):
    """Test-set evaluation and champion selection (model_evaluation stage)."""

    models: list[Literal["baseline", "lightgbm", "distilbert"]] = Field(
        ["baseline", "lightgbm", "distilbert"], min_length=1, description="Models to evaluate."
    )
    primary_metric: Literal["macro_f1", "weighted_f1", "accuracy", "roc_auc_ovr"] = Field(
        "macro_f1", description="Metric that picks the champion (higher is better)."
    )
    latency_batch_size: int = Field(64, ge=1, description="Batch size of the latency timing.")
    behavioural_tests: bool = Field(True, description="Run the behavioural (CheckList) suite.")
    onnx_max_logit_diff: float = Field(
        1e-3, gt=0, description="fp32 ONNX parity: largest absolute logit difference allowed."
    )
    onnx_min_argmax_agreement: float = Field(
        0.999, gt=0, le=1, description="fp32 ONNX parity: share of test texts with equal argmax."
    )
    int8_max_metric_drop: float = Field(
        0.01, ge=0, le=1, description="int8 ONNX: largest drop of the primary metric allowed."
    )

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each model may be listed once, got {value}")
        return value


class RegisterConfig(_Frozen):
    """MLflow Model Registry registration of the champion (register_model stage)."""

    model_name: str = Field("sentiment-classifier", min_length=1, description="Registry name.")
    min_score: float = Field(
        0.6, ge=0, le=1, description="Register only when the champion's test metric reaches this."
    )


class OnnxExportConfig(_Frozen):
    """ONNX export of the fine-tuned transformer (export_onnx stage, `export onnx`)."""

    enable: bool = Field(True, description="false: write placeholders instead of exports.")
    opset: int = Field(18, ge=14, le=23, description="ONNX opset version of the export.")
    quantize: bool = Field(True, description="Also write a dynamically quantised int8 copy.")
    per_channel: bool = Field(True, description="int8: one scale per output channel of weights.")
    reduce_range: Literal["auto", "true", "false"] = Field(
        "auto",
        description="int8: 7-bit weights; 'auto': on CPUs without VNNI, as ONNX Runtime advises.",
    )
    fp32_head: bool = Field(
        True, description="int8: keep the classifier head in fp32 (only the encoder quantised)."
    )


class ExportConfig(_Frozen):
    onnx: OnnxExportConfig = Field(default_factory=OnnxExportConfig)


class ServeConfig(_Frozen):
    """The HTTP service (`sentiment-pipeline serve`); host and port come from the environment."""

    model: str | None = Field(
        None,
        description="Model directory or models:/<name>@<alias> | models:/<name>/<version>; "
        "null: models:/<register.model_name>@champion, else the evaluation's champion folder.",
    )
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="Transformer runtime; 'auto': int8 ONNX where exported, then fp32 ONNX, "
        "then torch. Scikit-learn models ignore it.",
    )
    max_texts_per_request: int = Field(
        256, ge=1, le=100_000, description="Texts one request may hold (more: 413)."
    )
    max_text_chars: int = Field(
        2000, ge=1, description="Characters per text; longer: truncated if truncate, else 413."
    )
    max_body_bytes: int = Field(
        4_000_000, ge=1024, description="Largest request body in bytes (more: 413)."
    )
    max_concurrent_requests: int = Field(
        512, ge=1, description="Requests in flight per worker; beyond it: 429 at once."
    )
    max_batch_tokens: int = Field(
        16384, ge=1, description="Token budget of one model call that batches requests."
    )
    max_batch_requests: int = Field(
        32, ge=1, description="Requests one model call may batch together (1: no batching)."
    )
    max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a batch waits for more requests to join."
    )
    threads: int | None = Field(
        None, ge=1, description="Inference threads per worker; null: cores // workers."
    )
    reload_interval_s: float = Field(
        60.0, ge=0, description="Poll the registry alias this often (s) and swap in a new "
        "champion; 0: never.",
    )


class InsightsConfig(_Frozen):
    """Audience insights: analysing a video's comments (serve's /v1/analyze, `analyze`)."""

    language: str | None = Field(
        "en",
        description="ISO 639-1 code of the language the model was trained on; comments detected "
        "in another language are flagged and left out of the aggregates; null: no check.",
    )
    language_min_chars: int = Field(
        20, ge=1, description="Shorter comments are not language-checked (too little evidence)."
    )
    language_max_probability: float = Field(
        0.01, gt=0, lt=1,
        description="Flag a comment as another language when the identifier gives the model's "
        "language a probability below this (0.01: 6 of 14,482 English airline tweets flagged).",
    )
    include_other_languages: bool = Field(
        False, description="Count flagged other-language comments in the aggregates too."
    )
    max_comments: int = Field(
        1000, ge=1, description="Comments fetched from YouTube when a request names no number."
    )
    max_comments_limit: int = Field(
        10_000, ge=1, description="Most comments one analysis may hold (YouTube or a file)."
    )
    order: Literal["time", "relevance"] = Field(
        "time", description="YouTube commentThreads order."
    )
    top_n: int = Field(5, ge=1, le=100, description="Top comments shown per class.")
    uncertain_n: int = Field(10, ge=0, le=100, description="Least confident predictions shown.")
    terms_n: int = Field(10, ge=1, le=100, description="Distinctive terms shown per class.")
    terms_min_count: int = Field(
        3, ge=1, description="A term must occur this often to be ranked as distinctive."
    )
    max_upload_bytes: int = Field(
        20_000_000, ge=1024, description="Largest file /v1/analyze accepts as an upload (413)."
    )

    @model_validator(mode="after")
    def _limits(self) -> InsightsConfig:
        if self.max_comments > self.max_comments_limit:
            raise ValueError(
                f"insights.max_comments ({self.max_comments}) must be <= "
                f"insights.max_comments_limit ({self.max_comments_limit})"
            )
        return self


class TrainConfig(_Frozen):
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    distilbert: DistilBERTConfig = Field(default_factory=DistilBERTConfig)


class PipelineConfig(_Frozen):
    """The whole params.yaml tree."""

    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    # `register` would shadow BaseModel's ABC method, hence the alias.
    register_: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")
    export: ExportConfig = Field(default_factory=ExportConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
