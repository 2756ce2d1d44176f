"""Command-line flags for decoding, shared by ``trainer.caption`` and ``trainer.evaluate_checkpoint``: each value is
range-checked by its argparse type, so a bad one is a one-line usage error before any model is loaded."""
from __future__ import annotations

import argparse
import math

from modeling import DecodingOptions


def at_least(least: int):
    """argparse type: an int >= ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value
    parse.__name__ = f"int >= {least}"
    return parse


def real_in(low: float, high: float, low_open: bool = False):
    """argparse type: a float in [low, high] ((low, high] when ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            interval = f"{'(' if low_open else '['}{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint (a local folder, else a Hugging Face Hub repository id) and --revision (a Hub name's pin)."""
    parser.add_argument("--checkpoint", required=True, metavar="DIR_OR_NAME",
                        help="checkpoint dir (model + config + vocab.json), or a Hub repository ORG/NAME (a local "
                             "folder of that name wins)")
    parser.add_argument("--revision", default=None,
                        help="with a Hub name: the branch, tag or commit to load (default main)")


def add_decoding_arguments(parser: argparse.ArgumentParser, beam_size: int = 3, max_len: int = 20) -> None:
    """--beam-size, --max-len and the decoding controls (all off by default: plain beam search)."""
    group = parser.add_argument_group("decoding (defaults: plain beam search)")
    group.add_argument("--beam-size", type=at_least(1), default=beam_size, help="beams per image; 1: greedy")
    group.add_argument("--max-len", type=at_least(1), default=max_len, help="maximum caption length in words")
    group.add_argument("--length-penalty", type=real_in(0.0, math.inf), default=0.0,
                       help="rank finished captions by log p / length**PENALTY (0: sum of log p)")
    group.add_argument("--min-len", type=at_least(0), default=0, help="no <eos> before this many words")
    group.add_argument("--no-repeat-ngram-size", type=at_least(0), default=0,
                       help="N > 0: never repeat an N-gram within a caption")
    group.add_argument("--suppress-unk", action="store_true", help="never generate <unk> (default: allowed)")
    group.add_argument("--n-best", type=at_least(1), default=1,
                       help="captions per image, best first (<= --beam-size; with --sample: samples drawn)")
    group.add_argument("--sample", action="store_true", help="sample words instead of beam search")
    group.add_argument("--temperature", type=real_in(0.0, math.inf, low_open=True), default=1.0,
                       help="with --sample: softmax(logits / T)")
    group.add_argument("--top-k", type=at_least(0), default=0, help="with --sample: only the K likeliest words")
    group.add_argument("--top-p", type=real_in(0.0, 1.0, low_open=True), default=1.0,
                       help="with --sample: only the smallest set of words holding P of the probability")
    group.add_argument("--seed", type=int, default=0, help="with --sample: image i draws with seed SEED + i")


def options_from_args(args: argparse.Namespace) -> DecodingOptions:
    """The DecodingOptions of parsed flags (``suppress_unk`` is applied by the caller, which knows the vocabulary);
    ValueError naming the flag when they contradict each other."""
    try:
        return DecodingOptions(beam_size=args.beam_size, max_len=args.max_len, length_penalty=args.length_penalty,
                               min_len=args.min_len, no_repeat_ngram_size=args.no_repeat_ngram_size,
                               n_best=args.n_best, sample=args.sample, temperature=args.temperature,
                               top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    except ValueError as error:
        message = str(error).replace("(set sample)", "(add --sample)")
        for name in ("beam_size", "max_len", "min_len", "n_best", "temperature", "top_k", "top_p"):
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise ValueError(message) from None
