"""split: the stratified train/val/test split (prepare)."""

from __future__ import annotations

from pydantic import Field, model_validator

from sentiment_pipeline.config.base import Frozen


class SplitConfig(Frozen):
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
