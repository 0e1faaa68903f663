"""Where and in which precision the transformer stage trains, decided before any training."""

from __future__ import annotations

import importlib
import logging
from typing import Literal

from sentiment_pipeline.config.distilbert import FineTuneConfig
from sentiment_pipeline.errors import ConfigError

logger = logging.getLogger(__name__)

Device = Literal["cuda", "cpu"]
Precision = Literal["bf16", "fp16", "fp32"]
INSTALL_HINT = (
    "pip install 'sentiment-pipeline[transformers]' (on a machine without a GPU, install a "
    "CPU build of torch first, so that pip does not pull the multi-GB CUDA build)"
)


def missing_dependencies() -> list[str]:
    """The optional packages (torch, transformers) that cannot be imported."""
    missing = []
    for name in ("torch", "transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def resolve_device(
    config: FineTuneConfig, cuda_available: bool, section: str = "train.distilbert"
) -> Device | None:
    """The device to train on, or None when the stage must skip (auto, no CUDA, no allow_cpu)."""
    if config.device == "cuda" and not cuda_available:
        raise ConfigError(
            f"{section}.device is 'cuda' but no CUDA device is available "
            "(torch.cuda.is_available() is False); use 'auto' (skips without CUDA, or trains "
            f"on the CPU with {section}.allow_cpu=true) or 'cpu'"
        )
    if config.device == "cpu":
        return "cpu"
    if cuda_available:
        return "cuda"
    return "cpu" if config.allow_cpu else None


def resolve_precision(
    setting: str, device: Device, bf16_supported: bool, section: str = "train.distilbert"
) -> Precision:
    """Mixed precision on CUDA (bf16 where supported, else fp16); fp32 on the CPU."""
    if device == "cpu":
        if setting in ("bf16", "fp16"):
            logger.warning(
                "%s.mixed_precision=%s is ignored on the CPU; training in fp32", section,
                setting,
            )
        return "fp32"
    if setting == "auto":
        return "bf16" if bf16_supported else "fp16"
    if setting == "bf16" and not bf16_supported:
        raise ConfigError(
            f"{section}.mixed_precision is 'bf16' but this GPU does not support bf16; "
            "use 'auto', 'fp16' or 'no'"
        )
    return "fp32" if setting == "no" else setting  # type: ignore[return-value]
