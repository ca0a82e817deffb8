"""Shapes confirmed by running the model in onnxruntime in a limited child process."""
