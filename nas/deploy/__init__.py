"""The deployment layer: exported models (state dict, TorchScript, ONNX), model cards and latency measurement."""
