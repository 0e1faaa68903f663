"""Adopting a classifier trained elsewhere: its label names mapped to ours, its head reordered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.models.artifacts.transformers_model import save_transformers


def label_order(
    theirs: Mapping[int, str], ours: Sequence[str], label_map: Mapping[str, str], section: str
) -> list[int]:
    """For each of our classes in order, the adopted model's output id that means it.

    A name is looked up case-insensitively in `label_map`, then among our class names; a name
    that maps nowhere, or a class that two outputs or none mean, is a ConfigError naming them.
    """
    lookup = {name.casefold(): name for name in ours}
    lookup.update({key.casefold(): value for key, value in label_map.items()})
    meaning = {index: lookup.get(name.casefold()) for index, name in theirs.items()}
    unknown = [theirs[index] for index, ours_name in meaning.items() if ours_name not in ours]
    if unknown:
        raise ConfigError(
            f"the adopted model's labels {unknown} map to none of our classes {list(ours)}; add "
            f"them to {section}.label_map (e.g. {{{unknown[0]!r}: {ours[0]!r}}})"
        )
    by_class = {name: [i for i, m in meaning.items() if m == name] for name in ours}
    wrong = {name: [theirs[i] for i in ids] for name, ids in by_class.items() if len(ids) != 1}
    if wrong:
        raise ConfigError(
            f"each of our classes must be exactly one of the adopted model's labels "
            f"{sorted(theirs.values())}; found {wrong}; fix {section}.label_map"
        )
    return [by_class[name][0] for name in ours]


def output_layer(model: Any, num_labels: int) -> torch.nn.Linear:
    """The classifier's last linear layer (one row per label), whatever the architecture."""
    found = [m for m in model.modules()
             if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not found:
        raise PipelineError(f"found no linear output layer of {num_labels} classes to reorder")
    return found[-1]


def adopt(
    model_name_or_path: str,
    labels: Sequence[str],
    label_map: Mapping[str, str],
    section: str,
    target: Path,
    manifest: ModelManifest,
) -> dict[str, Any]:
    """Save `model_name_or_path` as our transformers folder: its outputs in our label order.

    Returns what was adopted (the source, its labels by our class) for the stage's result.
    """
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(
            f"cannot load {section}.model_name_or_path={model_name_or_path!r} "
            f"({type(exc).__name__}: {exc}); a hub id needs network access (or a filled hub "
            "cache); a local directory of a sequence classifier works the same way"
        ) from exc
    theirs = {int(i): str(name) for i, name in model.config.id2label.items()}
    order = label_order(theirs, labels, label_map, section)
    layer = output_layer(model, len(theirs))
    with torch.no_grad():
        layer.weight.copy_(layer.weight[order].clone())
        if layer.bias is not None:
            layer.bias.copy_(layer.bias[order].clone())
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    save_transformers(target, model, tokenizer, manifest)
    return {"adopted_from": model_name_or_path,
            "adopted_labels": {ours: theirs[i] for ours, i in zip(labels, order, strict=True)}}
