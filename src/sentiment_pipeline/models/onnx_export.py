"""export_onnx stage: the fine-tuned transformer as ONNX (fp32) and dynamically quantised (int8)."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from sentiment_pipeline import runner
from sentiment_pipeline.config.entities import OnnxExportConfig, PipelineConfig
from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    MANIFEST,
    ArtifactError,
    ModelManifest,
    content_hash,
    read_manifest,
    resolve_file,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

STAGE = "export_onnx"
MODEL_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
INSTALL_HINT = "pip install 'sentiment-pipeline[onnx]'"
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
# CPU flags of the int8 dot-product instructions; without them ONNX Runtime advises 7-bit
# weights (reduce_range) to avoid saturation in the 16-bit accumulation of u8 x s8 products.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# Ops at which the backward walk from the logits stops: the head starts after the encoder
# output was reduced to one vector per text ([CLS] select, pooling).
POOLING_OPS = ("Gather", "GatherElements", "Slice", "ReduceMean", "ReduceMax", "Squeeze")
WEIGHT_OPS = ("MatMul", "Gemm")


class ExportResult(BaseModel):
    """What export_onnx wrote: each folder exported, or the reason for its placeholder."""

    model_config = ConfigDict(frozen=True)

    source_hash: str | None
    fp32: str
    int8: str


def section(config: PipelineConfig) -> OnnxExportConfig:
    return config.export.onnx


def missing_dependencies() -> list[str]:
    """The packages among REQUIRED that are not installed."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has int8 dot-product instructions (reads /proc/cpuinfo's flags)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {
        flag for line in cpuinfo.splitlines() if line.startswith("flags")
        for flag in line.partition(":")[2].split()
    }
    return any(flag in flags for flag in VNNI_FLAGS)


def reduce_range(setting: str, cpuinfo: str | None = None) -> bool:
    """export.onnx.reduce_range as a bool; 'auto' is true only on a CPU without VNNI."""
    if setting == "auto":
        return not cpu_has_vnni(cpuinfo)
    return setting == "true"


def head_nodes(graph: Any) -> list[str]:
    """Names of the MatMul/Gemm nodes of the classifier head of an exported graph.

    Walks back from the first graph output (the logits) and stops at the op that reduced the
    encoder's output to one vector per text; when there is none (the walk reaches a graph
    input), only the last weight node is the head.
    """
    producers = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    found, seen, stack = [], set(), [graph.output[0].name]
    while stack:
        tensor = stack.pop()
        if tensor in inputs:
            last = _last_weight_node(graph.output[0].name, producers)
            return [last] if last else []
        node = producers.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in POOLING_OPS:
            continue
        if node.op_type in WEIGHT_OPS:
            found.append(node.name)
        stack.extend(node.input)
    return sorted(found)


def _last_weight_node(output: str, producers: dict[str, Any]) -> str | None:
    node = producers.get(output)
    while node is not None and node.op_type not in WEIGHT_OPS and node.input:
        node = producers.get(node.input[0])
    return node.name if node is not None and node.op_type in WEIGHT_OPS else None


def _check_source(source_dir: Path, manifest: ModelManifest) -> None:
    if manifest.kind != "transformers":
        what = "a placeholder" if manifest.kind == "placeholder" else f"a {manifest.kind} model"
        raise ArtifactError(
            f"{source_dir} is {what} ({manifest.name!r}); ONNX export takes a transformers model "
            "directory (kind 'transformers', written by train_distilbert)"
        )


def _logits_module(model: Any) -> Any:
    """The torch module the exporter traces: (input_ids, attention_mask) -> logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return Logits(model.to("cpu")).eval()


@contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger_ = logging.getLogger(name)
    before = logger_.level
    logger_.setLevel(level)
    try:
        yield
    finally:
        logger_.setLevel(before)


@contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    """Silence the quantiser's root-logger advice to pre-process the graph: its symbolic shape
    inference fails on dynamo exports, and the export is already optimised by onnxscript."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Please consider to run pre-processing")

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _export_graph(model: Any, tokenizer: Any, target: Path, opset: int) -> None:
    """torch.onnx.export (dynamo) with dynamic batch and sequence axes into target/model.onnx."""
    import torch

    sample = tokenizer(list(SAMPLE_TEXTS[1:3]), padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {name: {0: batch, 1: sequence} for name in INPUTS}
    # The exporter warns about torchvision ops it cannot register and about its own internals.
    with warnings.catch_warnings(), _logger_level("torch.onnx", logging.ERROR), torch.no_grad():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, DeprecationWarning))
        torch.onnx.export(
            _logits_module(model),
            tuple(sample[name] for name in INPUTS),
            str(target / MODEL_FILE),
            input_names=list(INPUTS),
            output_names=["logits"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=axes,
            external_data=_weight_bytes(model) > SINGLE_FILE_LIMIT,
            verbose=False,
        )


def _strip_metadata(file: Path) -> None:
    """Drop the exporter's per-node metadata (source stack traces with local paths)."""
    import onnx

    graph = onnx.load(str(file), load_external_data=False)
    for node in graph.graph.node:
        del node.metadata_props[:]
    onnx.save(graph, str(file))


def _check_export(model: Any, tokenizer: Any, directory: Path) -> float:
    """Largest |logit difference| to PyTorch on SAMPLE_TEXTS at batch 1 and all at once."""
    import torch

    from sentiment_pipeline.models.artifacts import onnx_model

    session = onnx_model.open_session(directory / MODEL_FILE, threads=1)
    worst = 0.0
    for texts in [SAMPLE_TEXTS[:1], SAMPLE_TEXTS]:
        encoded = tokenizer(list(texts), padding=True, return_tensors="pt")
        with torch.inference_mode():
            expected = model(**{k: encoded[k] for k in INPUTS}).logits.double().numpy()
        feed = {k: encoded[k].numpy().astype(np.int64) for k in INPUTS}
        worst = max(worst, float(np.abs(session.run(None, feed)[0] - expected).max()))
    if worst > EXPORT_TOLERANCE:
        raise ArtifactError(
            f"the ONNX export of {directory.name} differs from PyTorch by {worst:.2e} in the "
            f"logits of sample texts (at most {EXPORT_TOLERANCE} expected); the exporter "
            "mistranslated the model: try another export.onnx.opset"
        )
    return worst


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
    _check_source(source_dir, read_manifest(source_dir, symlink_root=symlink_root))
    source = load_model(source_dir, require_real=True, project=project)
    manifest = source.manifest.model_copy(
        update={
            "kind": "onnx",
            "precision": "fp32",
            "source_hash": content_hash(source_dir),
            "params": {**source.manifest.params, "opset": config.opset},
        }
    )
    with atomic_dir(target_dir) as tmp:
        _export_graph(source.model, source.tokenizer, tmp, config.opset)
        _strip_metadata(tmp / MODEL_FILE)
        files = graph_files(tmp)
        worst = _check_export(source.model, source.tokenizer, tmp)
        source.tokenizer.save_pretrained(tmp)
        manifest = manifest.model_copy(update={"files": files})
        write_manifest(tmp, manifest)
    logger.info("exported %s to %s (max |logit diff| on sample texts %.1e)", source_dir,
                target_dir, worst)
    return manifest


def _graph_file_names(manifest: ModelManifest) -> set[str]:
    return {MODEL_FILE, *manifest.files.values()}


def quantize_int8(
    fp32_dir: Path,
    target_dir: Path,
    config: OnnxExportConfig,
    *,
    project: ProjectPaths | None = None,
) -> ModelManifest:
    """Dynamically quantise an fp32 `onnx` folder's weights to int8 into `target_dir`, atomically.

    QInt8 weights, per channel (export.onnx.per_channel), 7-bit where reduce_range says, the
    classifier head left in fp32 when export.onnx.fp32_head.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    symlink_root = project.dvc_cache if project is not None else None
    manifest = read_manifest(fp32_dir, symlink_root=symlink_root)
    if manifest.kind != "onnx" or manifest.precision != "fp32":
        raise ArtifactError(
            f"{fp32_dir} is a {manifest.kind} model (precision {manifest.precision}); int8 "
            "quantisation takes an fp32 onnx folder written by the ONNX export"
        )
    graph = resolve_file(fp32_dir, manifest.files.get("model", MODEL_FILE), symlink_root)
    for name in manifest.files.values():
        resolve_file(fp32_dir, name, symlink_root)
    head = head_nodes(onnx.load(str(graph), load_external_data=False).graph) if (
        config.fp32_head) else []
    # The quantiser first rewrites each Gemm into MatMul (+ Add) named `<gemm>_MatMul`, and
    # checks nodes_to_exclude against the rewritten graph: name both.
    excluded = [name for node in head for name in (node, f"{node}_MatMul")]
    settings = {
        "weight_type": "QInt8",
        "per_channel": config.per_channel,
        "reduce_range": reduce_range(config.reduce_range),
        "fp32_nodes": head,
    }
    with atomic_dir(target_dir) as tmp, _without_preprocessing_advice():
        quantize_dynamic(
            graph,
            tmp / MODEL_FILE,
            weight_type=QuantType.QInt8,
            per_channel=config.per_channel,
            reduce_range=settings["reduce_range"],
            nodes_to_exclude=excluded,
        )
        files = graph_files(tmp)
        skip = _graph_file_names(manifest) | {MANIFEST}
        for item in sorted(fp32_dir.iterdir()):
            if item.name not in skip and item.is_file():
                shutil.copy2(resolve_file(fp32_dir, item.name, symlink_root), tmp / item.name)
        manifest = manifest.model_copy(
            update={
                "precision": "int8",
                "files": files,
                "params": {**manifest.params, "quantization": settings},
            }
        )
        write_manifest(tmp, manifest)
    logger.info("quantised %s to int8 in %s (%s)", fp32_dir, target_dir, settings)
    return manifest


def _require_dependencies() -> None:
    missing = missing_dependencies()
    if missing:
        raise ArtifactError(
            f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'}"
            f" not installed; {INSTALL_HINT}"
        )


def int8_dir(fp32_dir: Path) -> Path:
    """Where the int8 copy of an fp32 export goes: beside it, with `_int8` appended."""
    return fp32_dir.with_name(f"{fp32_dir.name}_int8")


def export_command(
    model_dir: Path, output: Path | None, *, quantize: bool, config: OnnxExportConfig
) -> list[Path]:
    """`sentiment-pipeline export onnx`: export any transformers folder (and its int8 copy).

    output: the fp32 folder (default `<model>_onnx` beside the model); the int8 copy goes to
    `<output>_int8`. Returns the folders written.
    """
    source = model_dir.expanduser().resolve()
    manifest = read_manifest(source)
    _check_source(model_dir, manifest)
    target = (output or source.with_name(f"{source.name}_onnx")).expanduser().resolve()
    for path in [target, int8_dir(target)] if quantize else [target]:
        if path == source or path.is_relative_to(source) or source.is_relative_to(path):
            raise ArtifactError(
                f"--output {path} overlaps the model directory {source}; choose a folder "
                "outside it (default: <model>_onnx beside it)"
            )
    _require_dependencies()
    export_transformers(source, target, config)
    if not quantize:
        return [target]
    quantize_int8(target, int8_dir(target), config)
    return [target, int8_dir(target)]


def skip_reason(config: OnnxExportConfig, source: ModelManifest) -> str | None:
    """Why the stage writes placeholders instead of exports, or None."""
    if not config.enable:
        logger.info("export.onnx.enable is false; writing placeholders")
        return "disabled"
    if source.kind == "placeholder":
        logger.info("%s is a placeholder (%s); writing placeholders", source.name, source.reason)
        return source.reason
    missing = missing_dependencies()
    if missing:
        logger.warning("skipping the ONNX export: %s not installed; %s", ", ".join(missing),
                       INSTALL_HINT)
        return f"missing_dependency: {', '.join(missing)} not installed; {INSTALL_HINT}"
    return None


def write_placeholders(
    paths: ProjectPaths, source: ModelManifest, reasons: Sequence[str | None]
) -> None:
    """A placeholder in each folder whose reason is given (fp32, int8)."""
    for target, reason, precision in zip(
        (paths.distilbert_onnx, paths.distilbert_onnx_int8), reasons, ("fp32", "int8"),
        strict=True,
    ):
        if reason is not None:
            save_placeholder(target, source.name, source.labels, reason,
                             params={"precision": precision})


def run(config: OnnxExportConfig, paths: ProjectPaths) -> ExportResult:
    source = read_manifest(paths.distilbert_model, symlink_root=paths.dvc_cache)
    if source.kind not in ("transformers", "placeholder"):
        _check_source(paths.distilbert_model, source)
    reason = skip_reason(config, source)
    if reason is not None:
        write_placeholders(paths, source, [reason, reason])
        return ExportResult(source_hash=None, fp32=f"skipped: {reason}", int8=f"skipped: {reason}")
    exported = export_transformers(paths.distilbert_model, paths.distilbert_onnx, config,
                                   project=paths)
    if config.quantize:
        quantize_int8(paths.distilbert_onnx, paths.distilbert_onnx_int8, config, project=paths)
        int8 = "exported"
    else:
        int8_reason = "disabled: export.onnx.quantize is false"
        write_placeholders(paths, source, [None, int8_reason])
        int8 = f"skipped: {int8_reason}"
    return ExportResult(source_hash=exported.source_hash, fp32="exported", int8=int8)


def main() -> None:
    runner.main(STAGE, run, section)


if __name__ == "__main__":
    main()
