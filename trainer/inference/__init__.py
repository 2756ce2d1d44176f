"""Using a trained model: the caption pipeline, ONNX export and search, model cards.

    from trainer.inference import CaptionPipeline
"""
from trainer.inference.pipeline import Caption, CaptionPipeline, ImageCaptions, load_for_inference

__all__ = ["Caption", "CaptionPipeline", "ImageCaptions", "load_for_inference"]
