"""export_onnx stage: the fine-tuned transformer as ONNX (fp32) and dynamically quantised (int8)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from sentiment_pipeline import runner
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, read_manifest
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.models.conversion.int8 import quantize_int8
from sentiment_pipeline.models.conversion.onnx_export import (
    INSTALL_HINT,
    check_source,
    export_transformers,
    missing_dependencies,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)


class ExportResult(BaseModel):
    """What export_onnx wrote: each folder exported, or the reason for its placeholder."""

    model_config = ConfigDict(frozen=True)

    source_hash: str | None
    fp32: str
    int8: str


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
        check_source(paths.distilbert_model, source)
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


STAGE = Stage("export_onnx", "export.onnx", OnnxExportConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
