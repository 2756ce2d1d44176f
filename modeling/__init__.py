"""Show, Attend and Tell model: ResNet-50 encoder (frozen or fine-tuned), additive attention, LSTMCell decoder."""
from .beam_search import Generation
from .captioner import Captioner, CaptionerOutput
from .config import CaptionerConfig
from .decoding_options import DecodingOptions

__all__ = ["Captioner", "CaptionerConfig", "CaptionerOutput", "DecodingOptions", "Generation"]
