"""Evaluate a checkpoint on a prepared split: batched beam search, COCO-results JSON, COCO caption metrics.

    python -m trainer.evaluate_checkpoint --checkpoint CKPT --data OUT --split test [--beam-size 3] [--out results.json]
    accelerate launch -m trainer.evaluate_checkpoint ...   # shards the split over ranks; rank 0 gathers, scores and writes

The last line of stdout is one JSON object: {"Bleu_1", .., "Bleu_4", "CIDEr", "ROUGE_L"[, "METEOR" when Java is on
PATH]} (pycocoevalcap-equal). Each results row carries that image's own "scores". ``--report DIR`` also writes
DIR/index.html (trainer.report: summary table, learning curves, gallery with attention).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from data_pipelines.data_root import DataRoot
from data_pipelines.vocab import SPECIALS, Vocabulary
from modeling import Captioner
from trainer.metrics.per_image import score_captions

DEFAULT_IMAGE_SIZE = 224


def checkpoint_image_size(checkpoint: Path) -> int | None:
    """``data.image_size`` of the train config saved in ``CKPT/trainer_state.json``, if it records one."""
    state_path = checkpoint / "trainer_state.json"
    if not state_path.is_file():
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{state_path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    data = (state.get("train_config") or {}).get("data") or {}
    return int(data["image_size"]) if "image_size" in data else None


def resolve_image_size(checkpoint: Path, image_size: int | None) -> int:
    """An explicit ``image_size`` wins over the checkpoint's train config, which wins over 224."""
    return image_size or checkpoint_image_size(checkpoint) or DEFAULT_IMAGE_SIZE


DECODE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DECODE_DTYPE_HELP = ("float32 (default) | bfloat16: matrix products in bfloat16, scores in float32; ~2x faster batched "
                     "beam search on CPUs with AMX and on GPUs, captions may differ slightly (see README)")


def load_for_inference(checkpoint: str | Path, image_size: int | None,
                       device: torch.device | str = "cpu") -> tuple[Captioner, Vocabulary, int]:
    """Model (eval mode, on ``device``), vocabulary and image size (``resolve_image_size``) of a checkpoint dir."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory (expected config.json, "
                                f"model.safetensors, vocab.json)")
    vocab_path = checkpoint / "vocab.json"
    if not vocab_path.is_file():
        raise FileNotFoundError(f"{vocab_path} does not exist (a checkpoint dir must contain vocab.json)")
    model = Captioner.from_pretrained(checkpoint, map_location="cpu").to(device).eval()
    vocab = Vocabulary.load(vocab_path)
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"{vocab_path} has {len(vocab)} words but {checkpoint}/config.json says vocab_size="
                         f"{model.config.vocab_size}")
    return model, vocab, resolve_image_size(checkpoint, image_size)


def results_image_id(image_id: str):
    """COCO results use integer ids: digit-only ids become ints, others stay strings."""
    return int(image_id) if isinstance(image_id, str) and image_id.isdigit() else image_id


def vocabulary_warning(vocab: Vocabulary, data) -> str | None:
    """A warning when ``data/vocab.json`` (the words of the data's train split) differs from the checkpoint's: the
    model can only say its own words, so scores on data it was not trained on are lower. None when they agree."""
    path = DataRoot(data).join("vocab.json")
    if not DataRoot(data).is_file("vocab.json"):
        return None
    ours, theirs = set(vocab.itos) - set(SPECIALS), set(Vocabulary.load(path).itos) - set(SPECIALS)
    if ours == theirs:
        return None
    shared = len(ours & theirs)
    return (f"warning: the checkpoint's vocabulary is not the one of {path}: {shared} of the data's {len(theirs)} words "
            f"({100 * shared / max(1, len(theirs)):.1f}%) are among the checkpoint's {len(ours)}; was the checkpoint "
            f"trained on this data?")


def argument_error(args: argparse.Namespace) -> str | None:
    """The first impossible argument value, as a message naming the flag (checked before any work)."""
    for flag, value, least in (("--beam-size", args.beam_size, 1), ("--max-len", args.max_len, 1),
                               ("--batch-size", args.batch_size, 1), ("--num-workers", args.num_workers, 0)):
        if value < least:
            return f"{flag} must be >= {least}, got {value}"
    if args.out is not None and args.out.is_dir():
        return f"--out {args.out} is a directory; give the results file, e.g. {args.out / f'results_{args.split}.json'}"
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.evaluate_checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint dir (model + config + vocab.json)")
    parser.add_argument("--data", required=True, help="prepared dataset: directory or URL (shards + manifest.json)")
    parser.add_argument("--split", default="test", help="split to decode (default test)")
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=20, help="maximum caption length in words")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"default: the checkpoint's data.image_size, else {DEFAULT_IMAGE_SIZE}")
    parser.add_argument("--features", default=None, help="feature cache (dir or URL) of --data (skips the backbone)")
    parser.add_argument("--out", type=Path, default=None, help="COCO results JSON (default CKPT/results_SPLIT.json)")
    parser.add_argument("--report", type=Path, default=None, help="also write a static HTML report to DIR/index.html")
    parser.add_argument("--dtype", choices=sorted(DECODE_DTYPES), default="float32", help=DECODE_DTYPE_HELP)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if argument_error(args):
        sys.exit(f"error: {argument_error(args)}")
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    from data_pipelines.features import check_feature_cache
    from data_pipelines.stream import build_eval_loader
    from modeling.encoder import backbone_fingerprint
    from trainer.decoding import decode_batches, gather_captions
    from trainer.process_group import check_process_group

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    check_process_group(accelerator)
    try:  # a missing split, checkpoint file or mismatched feature cache: one line, before any decoding
        model, vocab, image_size = load_for_inference(args.checkpoint, args.image_size, accelerator.device)
        if args.features is not None:  # the cache must come from this checkpoint's frozen backbone, as in training
            check_feature_cache(args.features, None, image_size, args.data, backbone_fingerprint(model.encoder.backbone))
        model.to(DECODE_DTYPES[args.dtype])
        loader = build_eval_loader(args.data, split=args.split, vocab=vocab, batch_size=args.batch_size,
                                   rank=accelerator.process_index, world_size=accelerator.num_processes,
                                   num_workers=args.num_workers, image_size=image_size, features_root=args.features)
        warning = vocabulary_warning(vocab, args.data) if accelerator.is_main_process else None
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    if warning:
        print(warning, file=sys.stderr)
    rows, attention_rows = [], []  # attention: (image_id, (caption words, regions)) for the report
    for _, generation, batch_rows in decode_batches(model, vocab, loader, accelerator.device, args.beam_size,
                                                    args.max_len):
        rows += batch_rows
        if args.report is not None:
            attention_rows += [(image_id, alphas[:len(caption.split())].float().cpu().numpy())
                               for (image_id, caption, _), alphas in zip(batch_rows, generation.alphas)]
    predictions, references = gather_captions(accelerator, rows)
    attention = {}
    for image_id, alphas in gather_object(attention_rows) if accelerator.num_processes > 1 else attention_rows:
        attention.setdefault(image_id, alphas)
    if not accelerator.is_main_process:
        return 0
    if not predictions:
        sys.exit(f"error: split {args.split!r} of {args.data} yielded no images")
    scores = score_captions(predictions, references)
    metrics = scores.metrics
    out_path = args.out or args.checkpoint / f"results_{args.split}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    results = [{"image_id": results_image_id(image_id), "caption": caption, "scores": scores.per_image[image_id]}
               for image_id, caption in predictions.items()]
    out_path.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(results)} captions of split {args.split!r} written to {out_path}")
    if args.report is not None:
        # Imported here: trainer.report imports trainer.caption, which imports this module (and matplotlib is slow).
        from trainer.report import write_evaluation_report
        page = write_evaluation_report(args.report, checkpoint=args.checkpoint, data=args.data, split=args.split,
                                       predictions=predictions, references=references, scores=scores,
                                       attention=attention, grid_size=model.config.grid_size, image_size=image_size)
        print(f"report written to {page}")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
