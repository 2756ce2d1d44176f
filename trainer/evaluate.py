"""Evaluate a checkpoint on a prepared split: batched beam search, COCO-results JSON, COCO caption metrics.

    python -m trainer.evaluate --checkpoint CKPT --data OUT --split test [--beam-size 3] [--out results.json]
    accelerate launch -m trainer.evaluate ...   # shards the split over ranks; rank 0 gathers, scores and writes

The last line of stdout is one JSON object: {"Bleu_1", .., "Bleu_4", "CIDEr", "ROUGE_L"[, "METEOR" when Java is on
PATH]} (pycocoevalcap-equal). Each results row carries that image's own "scores". ``--report DIR`` also writes
DIR/index.html (trainer.report: summary table, learning curves, gallery with attention).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from data_pipelines.vocab import Vocabulary
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


def decode_split(model: Captioner, vocab: Vocabulary, loader, device, beam_size: int, max_len: int) -> list[tuple]:
    """(image_id, caption, references, attention (caption words, regions)) for every image this rank's loader
    yields."""
    rows = []
    for batch in loader:
        inputs = (batch["features"] if "features" in batch else batch["pixels"]).to(device)
        generation = model.generate(inputs, beam_size=beam_size, max_len=max_len)
        for image_id, tokens, refs, alphas in zip(batch["image_id"], generation.tokens.tolist(), batch["references"],
                                                  generation.alphas):
            caption = vocab.decode(tokens)
            rows.append((image_id, caption, list(refs), alphas[:len(caption.split())].float().cpu().numpy()))
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint dir (model + config + vocab.json)")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir (shards + manifest.json)")
    parser.add_argument("--split", default="test", help="split to decode (default test)")
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=20, help="maximum caption length in words")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"default: the checkpoint's data.image_size, else {DEFAULT_IMAGE_SIZE}")
    parser.add_argument("--features", type=Path, default=None, help="feature cache dir of --data (skips the backbone)")
    parser.add_argument("--out", type=Path, default=None, help="COCO results JSON (default CKPT/results_SPLIT.json)")
    parser.add_argument("--report", type=Path, default=None, help="also write a static HTML report to DIR/index.html")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    from data_pipelines.stream import build_eval_loader

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    expected_processes = int(os.environ.get("WORLD_SIZE", 1))
    if accelerator.num_processes != expected_processes:
        sys.exit(f"error: accelerate started {expected_processes} processes but they formed a group of "
                 f"{accelerator.num_processes}; launch with `accelerate launch --num_processes N` (CPU: add --cpu "
                 f"or set ACCELERATE_USE_CPU=1)")
    model, vocab, image_size = load_for_inference(args.checkpoint, args.image_size, accelerator.device)
    loader = build_eval_loader(args.data, split=args.split, vocab=vocab, batch_size=args.batch_size,
                               rank=accelerator.process_index, world_size=accelerator.num_processes,
                               num_workers=args.num_workers, image_size=image_size, features_root=args.features)
    rows = decode_split(model, vocab, loader, accelerator.device, args.beam_size, args.max_len)
    rows = gather_object(rows) if accelerator.num_processes > 1 else rows
    if not accelerator.is_main_process:
        return 0

    predictions, references, attention = {}, {}, {}
    for image_id, caption, refs, alphas in rows:  # every image once over the ranks; dedupe if a loader repeats one
        predictions.setdefault(image_id, caption)
        references.setdefault(image_id, refs)
        attention.setdefault(image_id, alphas)
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
