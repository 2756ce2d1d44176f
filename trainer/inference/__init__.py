"""Using a trained model: the caption pipeline, ONNX export and search, model cards."""
