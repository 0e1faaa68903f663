"""`sentiment-pipeline export onnx`: export any transformers folder, and its int8 copy."""

from __future__ import annotations

from pathlib import Path

from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.models.artifacts.loader import export_dirs
from sentiment_pipeline.models.artifacts.manifest import ArtifactError, read_manifest
from sentiment_pipeline.models.conversion.int8 import int8_dir, quantize_int8
from sentiment_pipeline.models.conversion.onnx_export import (
    check_source,
    export_transformers,
    require_dependencies,
)


def export_command(
    model_dir: Path, output: Path | None, *, quantize: bool, config: OnnxExportConfig
) -> list[Path]:
    """`sentiment-pipeline export onnx`: export any transformers folder (and its int8 copy).

    output: the fp32 folder (default `<model>_onnx` beside the model); the int8 copy goes to
    `<output>_int8`. Returns the folders written.
    """
    source = model_dir.expanduser().resolve()
    manifest = read_manifest(source)
    check_source(model_dir, manifest)
    target = (output or export_dirs(source)["onnx"]).expanduser().resolve()
    for path in [target, int8_dir(target)] if quantize else [target]:
        if path == source or path.is_relative_to(source) or source.is_relative_to(path):
            raise ArtifactError(
                f"--output {path} overlaps the model directory {source}; choose a folder "
                "outside it (default: <model>_onnx beside it)"
            )
    require_dependencies()
    export_transformers(source, target, config)
    if not quantize:
        return [target]
    quantize_int8(target, int8_dir(target), config)
    return [target, int8_dir(target)]
