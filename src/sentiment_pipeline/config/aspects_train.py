"""train.aspects: the aspect (text, aspect) pair classifier, fine-tuned like train.distilbert."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sentiment_pipeline.config.distilbert import FineTuneConfig


class AspectsTrainConfig(FineTuneConfig):
    """Aspect sentiment as a pair classifier tuned with Optuna (train_aspects stage)."""

    model_name_or_path: str = Field(
        "bert-base-uncased",
        min_length=1,
        description="Hub id or local directory of a BERT-family encoder (segment ids: the text "
        "and the aspect are the tokenizer's pair), or of a pair classifier (fine_tune false).",
    )
    # Measured on SemEval-2014 laptops (BENCHMARKS.md 11): more than 4 epochs overfit, and the
    # best rate was 5e-5.
    lr: tuple[float, float] = Field((3e-5, 1e-4), description="Learning-rate bounds (log scale).")
    epochs: tuple[int, int] = Field((3, 4), description="Epoch bounds (integers).")
    mark_aspect: bool = Field(
        True, description="Wrap the aspect's span in the text in [ ] (pair_style 'marked')."
    )
    class_weight: Literal["none", "balanced", "sqrt"] = Field(
        "balanced",
        description="Loss weights by class: 'balanced' n / (k * count), 'sqrt' its square root "
        "(gentler on the scarce neutral class), 'none': plain cross-entropy.",
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss (0: none)."
    )
    fine_tune: bool = Field(
        True,
        description="false: adopt model_name_or_path (a pair classifier) as it is, its labels "
        "mapped to ours by label_map; no study.",
    )
    label_map: dict[str, str] = Field(
        default_factory=dict,
        description="fine_tune false: the adopted model's label name -> ours (negative, neutral, "
        "positive); matched case-insensitively, and a name equal to ours needs no entry.",
    )

    @field_validator("label_map")
    @classmethod
    def _no_blank_names(cls, value: dict[str, str]) -> dict[str, str]:
        blank = [key for key, name in value.items() if not key.strip() or not name.strip()]
        if blank:
            raise ValueError(f"label names must not be blank, got entries for {blank}")
        return value
