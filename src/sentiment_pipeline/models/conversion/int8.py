"""Dynamic int8 quantisation of an fp32 ONNX folder, the classifier head kept in fp32."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.machine import has_vnni
from sentiment_pipeline.models.artifacts.manifest import (
    MANIFEST,
    ArtifactError,
    ModelManifest,
    read_manifest,
    resolve_file,
    write_manifest,
)
from sentiment_pipeline.models.conversion.onnx_export import MODEL_FILE, graph_files
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

# Ops at which the backward walk from the logits stops: the head starts after the encoder
# output was reduced to one vector per text ([CLS] select, pooling).
POOLING_OPS = ("Gather", "GatherElements", "Slice", "ReduceMean", "ReduceMax", "Squeeze")
WEIGHT_OPS = ("MatMul", "Gemm")


def reduce_range(setting: str, cpuinfo: str | None = None) -> bool:
    """export.onnx.reduce_range as a bool; 'auto' is true only on a CPU without VNNI."""
    if setting == "auto":
        return not has_vnni(cpuinfo)
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


def int8_dir(fp32_dir: Path) -> Path:
    """Where the int8 copy of an fp32 export goes: beside it, with `_int8` appended."""
    return fp32_dir.with_name(f"{fp32_dir.name}_int8")
