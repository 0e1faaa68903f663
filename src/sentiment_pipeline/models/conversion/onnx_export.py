"""A transformers model folder as an ONNX (fp32) folder, checked against PyTorch."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.models.artifacts import fast_tokenizer
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    content_hash,
    read_manifest,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.pairs import pair_segments
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
INSTALL_HINT = "pip install 'sentiment-pipeline[transformers,onnx]'"
# What the export needs beyond the transformers extra (torch.onnx's dynamo exporter: onnx and
# onnxscript) and what runs and quantises the result.
REQUIRED = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")
# Weights up to this size go into model.onnx itself (protobuf's limit is 2 GiB); beyond it the
# exporter writes them to a side file. One file is preferred: ONNX Runtime refuses external data
# that resolves outside the graph's folder, which a DVC `cache.type: symlink` checkout does.
SINGLE_FILE_LIMIT = 1_800_000_000
# An export whose logits differ from PyTorch's by more than this on the sample texts is refused
# at once (model_evaluation checks the whole test split against evaluation.onnx_max_logit_diff).
EXPORT_TOLERANCE = 1e-3
SAMPLE_TEXTS = (
    "ok",
    "the flight was delayed for three hours and nobody told us anything at the gate",
    "great crew, thank you!",
    "lost my bag again",
)
# A pair model's samples: each text with a term of it.
SAMPLE_PAIRS = tuple(zip(SAMPLE_TEXTS, ("ok", "gate", "crew", "bag"), strict=True))


def missing_dependencies() -> list[str]:
    """The packages among REQUIRED that are not installed."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def require_dependencies() -> None:
    missing = missing_dependencies()
    if missing:
        raise ArtifactError(
            f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'}"
            f" not installed; {INSTALL_HINT}"
        )


def check_source(source_dir: Path, manifest: ModelManifest) -> None:
    if manifest.kind != "transformers":
        what = "a placeholder" if manifest.kind == "placeholder" else f"a {manifest.kind} model"
        raise ArtifactError(
            f"{source_dir} is {what} ({manifest.name!r}); ONNX export takes a transformers model "
            "directory (kind 'transformers', written by train_distilbert)"
        )


def samples(source: Any) -> list[Any]:
    """What the export is traced and checked on: texts, or (text, aspect) pairs."""
    return list(SAMPLE_PAIRS if source.manifest.input == "pair" else SAMPLE_TEXTS)


def segments(source: Any, items: Sequence[Any]) -> tuple[list[str], list[str] | None]:
    """The tokenizer's first and (for a pair model) second segments of `items`."""
    if source.manifest.input == "pair":
        return pair_segments(items, source.manifest.pair_style)
    return [str(item) for item in items], None


def graph_inputs(source: Any) -> tuple[str, ...]:
    """The graph's inputs: a pair model whose tokenizer gives segment ids takes them too."""
    names = getattr(source.tokenizer, "model_input_names", ())
    if source.manifest.input == "pair" and "token_type_ids" in names:
        return (*INPUTS, "token_type_ids")
    return INPUTS


def _logits_module(model: Any, inputs: tuple[str, ...]) -> Any:
    """The torch module the exporter traces: (input_ids, attention_mask[, token_type_ids]) ->
    logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    class PairLogits(Logits):
        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    module = PairLogits if "token_type_ids" in inputs else Logits
    return module(model.to("cpu")).eval()


@contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger_ = logging.getLogger(name)
    before = logger_.level
    logger_.setLevel(level)
    try:
        yield
    finally:
        logger_.setLevel(before)


def _weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _encoded(source: Any, items: Sequence[Any]) -> Any:
    firsts, seconds = segments(source, items)
    return source.tokenizer(firsts, seconds, padding=True, return_tensors="pt")


def _export_graph(source: Any, target: Path, opset: int) -> None:
    """torch.onnx.export (dynamo) with dynamic batch and sequence axes into target/model.onnx."""
    import torch

    inputs = graph_inputs(source)
    sample = _encoded(source, samples(source)[1:3])
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {name: {0: batch, 1: sequence} for name in inputs}
    # The exporter warns about torchvision ops it cannot register and about its own internals.
    with warnings.catch_warnings(), _logger_level("torch.onnx", logging.ERROR), torch.no_grad():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, DeprecationWarning))
        torch.onnx.export(
            _logits_module(source.model, inputs),
            tuple(sample[name] for name in inputs),
            str(target / MODEL_FILE),
            input_names=list(inputs),
            output_names=["logits"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=axes,
            external_data=_weight_bytes(source.model) > SINGLE_FILE_LIMIT,
            verbose=False,
        )


def _strip_metadata(file: Path) -> None:
    """Drop the exporter's per-node metadata (source stack traces with local paths)."""
    import onnx

    graph = onnx.load(str(file), load_external_data=False)
    for node in graph.graph.node:
        del node.metadata_props[:]
    onnx.save(graph, str(file))


def _check_export(source: Any, directory: Path) -> float:
    """Largest |logit difference| to PyTorch on the samples at batch 1 and all at once."""
    import torch

    from sentiment_pipeline.models.artifacts import onnx_model

    session = onnx_model.open_session(directory / MODEL_FILE, threads=1)
    inputs = graph_inputs(source)
    worst = 0.0
    for items in [samples(source)[:1], samples(source)]:
        encoded = _encoded(source, items)
        with torch.inference_mode():
            expected = source.model(**{k: encoded[k] for k in inputs}).logits.double().numpy()
        feed = {k: encoded[k].numpy().astype(np.int64) for k in inputs}
        worst = max(worst, float(np.abs(session.run(None, feed)[0] - expected).max()))
    if worst > EXPORT_TOLERANCE:
        raise ArtifactError(
            f"the ONNX export of {directory.name} differs from PyTorch by {worst:.2e} in the "
            f"logits of sample texts (at most {EXPORT_TOLERANCE} expected); the exporter "
            "mistranslated the model: try another export.onnx.opset"
        )
    return worst


def require_fast_tokenizer(source: Any) -> None:
    """An onnx folder is served without transformers: its tokenizer is its tokenizer.json alone,
    read by the `tokenizers` library (models.artifacts.fast_tokenizer)."""
    if not getattr(source.tokenizer, "is_fast", False):
        raise ArtifactError(
            f"the tokenizer of {source.manifest.name!r} ({type(source.tokenizer).__name__}) is "
            f"not a fast tokenizer, so it has no {fast_tokenizer.TOKENIZER_FILE}, which an "
            "ONNX model folder is served with; train the model from a checkpoint with a "
            "tokenizer.json (transformers' AutoTokenizer, use_fast=True)"
        )


def check_tokenizer(source: Any, directory: Path) -> None:
    """The tokenizer.json saved in `directory` encodes the samples as the source's does."""
    long = " ".join(SAMPLE_TEXTS * 20)
    items = [*samples(source), (long, "gate") if source.manifest.input == "pair" else long]
    firsts, seconds = segments(source, items)
    names = ["input_ids", *(["token_type_ids"] if "token_type_ids" in graph_inputs(source) else [])]

    def padded(tokenizer: Any) -> Any:
        encoded = tokenizer(firsts, seconds, truncation=True, max_length=source.max_length)
        return tokenizer.pad({k: encoded[k] for k in names}, return_tensors="np")

    expected = padded(source.tokenizer)
    found = padded(fast_tokenizer.load_tokenizer(directory))
    if any(not np.array_equal(found[k], expected[k]) for k in [*names, "attention_mask"]):
        raise ArtifactError(
            f"the {fast_tokenizer.TOKENIZER_FILE} saved for {source.manifest.name!r} encodes "
            "the sample texts unlike its transformers tokenizer; its tokenizer cannot be "
            "served without transformers: serve the transformers folder (backend torch)"
        )


def graph_files(directory: Path) -> dict[str, str]:
    """model.onnx and the side files (external data) the exporter wrote beside it, by role."""
    extra = sorted(p.name for p in directory.iterdir() if p.name != MODEL_FILE)
    files = {"model": MODEL_FILE}
    for i, name in enumerate(extra):
        files["external_data" if i == 0 else f"external_data_{i + 1}"] = name
    return files


def export_transformers(
    source_dir: Path,
    target_dir: Path,
    config: OnnxExportConfig,
    *,
    project: ProjectPaths | None = None,
) -> ModelManifest:
    """Export a `transformers` model folder to an `onnx` (fp32) folder, atomically.

    project: the source may link into its DVC cache. The export is checked against PyTorch
    on a few texts at batch sizes 1 and 4 before it is written.
    """
    symlink_root = project.dvc_cache if project is not None else None
    check_source(source_dir, read_manifest(source_dir, symlink_root=symlink_root))
    source = load_model(source_dir, require_real=True, project=project)
    require_fast_tokenizer(source)
    manifest = source.manifest.model_copy(
        update={
            "kind": "onnx",
            "precision": "fp32",
            "source_hash": content_hash(source_dir),
            "params": {**source.manifest.params, "opset": config.opset},
        }
    )
    with atomic_dir(target_dir) as tmp:
        _export_graph(source, tmp, config.opset)
        _strip_metadata(tmp / MODEL_FILE)
        files = graph_files(tmp)
        worst = _check_export(source, tmp)
        source.tokenizer.save_pretrained(tmp)
        check_tokenizer(source, tmp)
        manifest = manifest.model_copy(update={"files": files})
        write_manifest(tmp, manifest)
    logger.info("exported %s to %s (max |logit diff| on sample texts %.1e)", source_dir,
                target_dir, worst)
    return manifest
