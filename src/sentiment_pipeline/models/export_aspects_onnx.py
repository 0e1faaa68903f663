"""export_aspects_onnx stage: the aspect (pair) model as ONNX (fp32) and quantised (int8)."""

from __future__ import annotations

from sentiment_pipeline import runner
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.models.conversion.export_folders import ExportResult, export_folders
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage


def run(config: OnnxExportConfig, paths: ProjectPaths) -> ExportResult:
    return export_folders(config, paths.aspect_model, paths.aspect_onnx, paths.aspect_onnx_int8,
                          paths)


STAGE = Stage("export_aspects_onnx", "export.onnx", OnnxExportConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
