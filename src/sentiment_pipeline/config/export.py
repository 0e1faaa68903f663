"""export.onnx: the ONNX export of the fine-tuned transformer (export_onnx, `export onnx`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sentiment_pipeline.config.base import Frozen


class OnnxExportConfig(Frozen):
    """ONNX export of the fine-tuned transformer (export_onnx stage, `export onnx`)."""

    enable: bool = Field(True, description="false: write placeholders instead of exports.")
    opset: int = Field(18, ge=14, le=23, description="ONNX opset version of the export.")
    quantize: bool = Field(True, description="Also write a dynamically quantised int8 copy.")
    per_channel: bool = Field(True, description="int8: one scale per output channel of weights.")
    reduce_range: Literal["auto", "true", "false"] = Field(
        "auto",
        description="int8: 7-bit weights; 'auto': on CPUs without VNNI, as ONNX Runtime advises.",
    )
    fp32_head: bool = Field(
        True, description="int8: keep the classifier head in fp32 (only the encoder quantised)."
    )
