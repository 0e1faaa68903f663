"""The hyper-parameters of one fine-tuning trial, named as the Trainer takes them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DistilBERTTrialParams(BaseModel):
    """What Optuna tunes; each field is the `TrainingArguments` argument of the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(gt=0, description="Peak learning rate of AdamW.")
    per_device_train_batch_size: int = Field(ge=1, description="Training batch size.")
    num_train_epochs: int = Field(ge=1, description="Passes over the training texts.")
    weight_decay: float = Field(ge=0, lt=1, description="AdamW weight decay.")
    warmup_steps: float = Field(
        ge=0, lt=1, description="Warm-up, as a share of all steps (a float below 1 is a ratio)."
    )
