"""Converting a trained transformer to other runtimes: ONNX fp32, and int8 from that."""
