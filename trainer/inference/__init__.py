"""Using a trained model: the caption pipeline, ONNX export and search, model cards.

    from trainer.inference import CaptionPipeline

The pipeline's names are loaded on first use, so ``trainer.inference.onnx_search`` runs without torch.
"""
__all__ = ["Caption", "CaptionPipeline", "ImageCaptions", "load_for_inference"]


def __getattr__(name: str):
    if name in __all__:
        from trainer.inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'trainer.inference' has no attribute {name!r}")
