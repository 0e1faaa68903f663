"""export_onnx stage: the fine-tuned transformer as ONNX (fp32) and dynamically quantised (int8)."""

from __future__ import annotations

from sentiment_pipeline import runner
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.models.conversion.export_folders import ExportResult, export_folders
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage


def run(config: OnnxExportConfig, paths: ProjectPaths) -> ExportResult:
    return export_folders(config, paths.distilbert_model, paths.distilbert_onnx,
                          paths.distilbert_onnx_int8, paths)


STAGE = Stage("export_onnx", "export.onnx", OnnxExportConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
