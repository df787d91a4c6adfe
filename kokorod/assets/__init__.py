"""Assets: the ONNX model, voice packs and spaCy's English pipeline."""
