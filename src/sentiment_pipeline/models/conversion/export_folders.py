"""The export stages' one body: a transformers folder to ONNX fp32 and int8, or placeholders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

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

logger = logging.getLogger(__name__)


class ExportResult(BaseModel):
    """What an export stage wrote: each folder exported, or the reason for its placeholder."""

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
    targets: Sequence[Path], source: ModelManifest, reasons: Sequence[str | None]
) -> None:
    """A placeholder in each folder (fp32, int8) whose reason is given."""
    for target, reason, precision in zip(targets, reasons, ("fp32", "int8"), strict=True):
        if reason is not None:
            save_placeholder(target, source.name, source.labels, reason,
                             params={"precision": precision})


def export_folders(
    config: OnnxExportConfig, source_dir: Path, fp32: Path, int8: Path, paths: ProjectPaths
) -> ExportResult:
    """Export the transformers folder `source_dir` to `fp32` and quantise that to `int8`.

    A placeholder source, export.onnx.enable false or a missing [onnx] extra: placeholders in
    both, with the reason; export.onnx.quantize false: a placeholder in `int8`.
    """
    source = read_manifest(source_dir, symlink_root=paths.dvc_cache)
    if source.kind not in ("transformers", "placeholder"):
        check_source(source_dir, source)
    reason = skip_reason(config, source)
    if reason is not None:
        write_placeholders((fp32, int8), source, [reason, reason])
        return ExportResult(source_hash=None, fp32=f"skipped: {reason}", int8=f"skipped: {reason}")
    exported = export_transformers(source_dir, fp32, config, project=paths)
    if config.quantize:
        quantize_int8(fp32, int8, config, project=paths)
        int8_status = "exported"
    else:
        int8_reason = "disabled: export.onnx.quantize is false"
        write_placeholders((fp32, int8), source, [None, int8_reason])
        int8_status = f"skipped: {int8_reason}"
    return ExportResult(source_hash=exported.source_hash, fp32="exported", int8=int8_status)
