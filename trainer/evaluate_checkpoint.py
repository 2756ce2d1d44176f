"""Evaluate a checkpoint on a prepared split: batched beam search, COCO-results JSON, COCO caption metrics.

    python -m trainer.evaluate_checkpoint --checkpoint CKPT --data OUT --split test [--beam-size 3] [--out results.json]
    accelerate launch -m trainer.evaluate_checkpoint ...   # shards the split over ranks; rank 0 gathers, scores and writes

The last line of stdout is one JSON object: {"Bleu_1", .., "Bleu_4", "CIDEr", "ROUGE_L"[, "METEOR" when Java is on
PATH]} (pycocoevalcap-equal; ``--metrics NAME ...``: those only). Each results row carries that image's own
"scores". ``--report DIR`` also writes DIR/index.html (trainer.evaluation.report: summary table, learning curves,
gallery with attention).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from data_pipelines.data_root import DataRoot, is_remote
from data_pipelines.safe_write import write_file
from data_pipelines.vocab import SPECIALS, Vocabulary
from trainer.evaluation.coco_results import results_image_id
from trainer.evaluation.metrics import check_score_names, score_captions, score_names
from trainer.inference.arguments import add_checkpoint_arguments, add_decoding_arguments, at_least, options_from_args
from trainer.inference.hub import resolve_checkpoint
from trainer.inference.pipeline import DECODE_DTYPE_HELP, DECODE_DTYPES, DEFAULT_IMAGE_SIZE, load_for_inference
from trainer.user_errors import exit_on_user_error


def vocabulary_warning(vocab: Vocabulary, data) -> str | None:
    """A warning when ``data/vocab.json`` (the words of the data's train split) holds words the checkpoint's lacks:
    the model can only say its own words, so scores on data it was not trained on are lower. None when the
    checkpoint knows every word of the data (its own data, or one source of the mixture it was trained on)."""
    path = DataRoot(data).join("vocab.json")
    if not DataRoot(data).is_file("vocab.json"):
        return None
    ours, theirs = set(vocab.itos) - set(SPECIALS), set(Vocabulary.load(path).itos) - set(SPECIALS)
    if theirs <= ours:
        return None
    shared = len(ours & theirs)
    return (f"warning: the checkpoint's vocabulary is not the one of {path}: {shared} of the data's {len(theirs)} words "
            f"({100 * shared / max(1, len(theirs)):.1f}%) are among the checkpoint's {len(ours)}; was the checkpoint "
            f"trained on this data?")


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """``path`` is ``folder`` or lies under it (links resolved); a URL (``--data``/``--features`` may be remote) holds
    no local path."""
    if is_remote(path) or is_remote(folder):
        return False
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def argument_error(args: argparse.Namespace) -> str | None:
    """Why the output paths are unsafe or impossible, as a message naming the flag (checked before any work): the
    results file and the report never go inside the dataset, its feature cache, or over a checkpoint file."""
    if args.out is not None:
        if args.out.is_dir():
            return (f"--out {args.out} is a directory; give the results file, e.g. "
                    f"{args.out / f'results_{args.split}.json'}")
        for flag, folder in (("--data", args.data), ("--features", args.features)):
            if folder is not None and is_inside(args.out, folder):
                return f"--out {args.out} is inside {flag} {folder}: evaluation never writes into its inputs"
        if is_inside(args.out, args.checkpoint) and not (args.out.name.startswith("results_")
                                                          and args.out.suffix == ".json"):
            return (f"--out {args.out} is inside --checkpoint {args.checkpoint}: only results_*.json files may be "
                    f"written there")
    if args.report is not None:
        for flag, folder in (("--data", args.data), ("--features", args.features), ("--checkpoint", args.checkpoint)):
            if folder is not None and (is_inside(args.report, folder) or is_inside(folder, args.report)):
                return f"--report {args.report} overlaps {flag} {folder}: give a folder of its own"
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.evaluate_checkpoint", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--data", required=True, help="prepared dataset: directory or URL (shards + manifest.json)")
    parser.add_argument("--split", default="test", help="split to decode (default test)")
    add_decoding_arguments(parser)
    parser.add_argument("--batch-size", type=at_least(1), default=32)
    parser.add_argument("--num-workers", type=at_least(0), default=2)
    parser.add_argument("--image-size", type=at_least(1), default=None,
                        help=f"default: the checkpoint's data.image_size, else {DEFAULT_IMAGE_SIZE}")
    parser.add_argument("--features", default=None, help="feature cache (dir or URL) of --data (skips the backbone)")
    parser.add_argument("--out", type=Path, default=None, help="COCO results JSON (default CKPT/results_SPLIT.json)")
    parser.add_argument("--report", type=Path, default=None, help="also write a static HTML report to DIR/index.html")
    parser.add_argument("--dtype", choices=sorted(DECODE_DTYPES), default="float32", help=DECODE_DTYPE_HELP)
    parser.add_argument("--metrics", nargs="+", metavar="NAME", default=None,
                        help=f"scores to compute (default: every registered metric: {', '.join(score_names())})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with exit_on_user_error(errors=(ValueError,)):
        check_score_names(args.metrics or (), "--metrics")
    try:
        options = options_from_args(args)
    except ValueError as error:
        sys.exit(f"error: {error}")
    with exit_on_user_error():
        given, args.checkpoint = Path(args.checkpoint), resolve_checkpoint(args.checkpoint, args.revision)
    if args.checkpoint != given and args.out is None:
        sys.exit(f"error: --checkpoint {args.checkpoint} is a Hub snapshot: give --out (results are never written "
                 f"into the Hub cache)")
    if argument_error(args):
        sys.exit(f"error: {argument_error(args)}")
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    from data_pipelines.feature_cache import check_feature_cache
    from data_pipelines.stream import build_eval_loader
    from modeling.encoder import encoder_description
    from trainer.distributed.process_group import check_process_group
    from trainer.evaluation.decoding import decode_batches, gather_captions

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    check_process_group(accelerator)
    with exit_on_user_error():  # a missing split, checkpoint file or mismatched feature cache: one line, first
        model, vocab, image_size = load_for_inference(args.checkpoint, args.image_size, accelerator.device)
        if args.features is not None:  # the cache must come from this checkpoint's frozen backbone, as in training
            check_feature_cache(args.features, None, image_size, args.data, model.encoder.backbone,
                                f"checkpoint {args.checkpoint}")
        model.to(DECODE_DTYPES[args.dtype])
        if args.suppress_unk:
            options = options.replace(suppress_ids=(vocab.unk_id,))
        loader = build_eval_loader(args.data, split=args.split, vocab=vocab, batch_size=args.batch_size,
                                   rank=accelerator.process_index, world_size=accelerator.num_processes,
                                   num_workers=args.num_workers, image_size=image_size, features_root=args.features)
        warning = vocabulary_warning(vocab, args.data) if accelerator.is_main_process else None
    if warning:
        print(warning, file=sys.stderr)
    rows, attention_rows = [], []  # attention: (image_id, (caption words, regions)) for the report
    candidates = []  # with --n-best: (image_id, [{"caption", "score"}, ...])
    with exit_on_user_error(errors=()):  # unreadable remote shards: one line
        for _, generation, batch_rows in decode_batches(model, vocab, loader, accelerator.device, options):
            rows += batch_rows
            if options.n_best > 1:
                texts, scores = [vocab.decode(tokens) for tokens in generation.tokens.tolist()], generation.scores.tolist()
                candidates += [(image_id, [{"caption": texts[k], "score": scores[k]}
                                           for k in range(i * options.n_best, (i + 1) * options.n_best)])
                               for i, (image_id, _, _) in enumerate(batch_rows)]
                generation = generation._replace(alphas=generation.alphas[::options.n_best])
            if args.report is not None:
                attention_rows += [(image_id, alphas[:len(caption.split())].float().cpu().numpy())
                                   for (image_id, caption, _), alphas in zip(batch_rows, generation.alphas)]
    predictions, references = gather_captions(accelerator, rows)
    n_best = dict(gather_object(candidates) if accelerator.num_processes > 1 else candidates)
    attention = {}
    for image_id, alphas in gather_object(attention_rows) if accelerator.num_processes > 1 else attention_rows:
        attention.setdefault(image_id, alphas)
    if not accelerator.is_main_process:
        return 0
    if not predictions:
        sys.exit(f"error: split {args.split!r} of {args.data} yielded no images")
    if coverage := loader.coverage_warning(len(predictions)):  # broken images: say so, the scores are over fewer
        print(f"warning: {coverage}", file=sys.stderr)
    scores = score_captions(predictions, references, args.metrics)
    metrics = scores.metrics
    out_path = args.out or args.checkpoint / f"results_{args.split}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    results = [{"image_id": results_image_id(image_id), "caption": caption, "scores": scores.per_image[image_id],
                **({"n_best": n_best[image_id]} if image_id in n_best else {})}
               for image_id, caption in predictions.items()]
    write_file(out_path, json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(results)} captions of split {args.split!r} ({len(results)} of {loader.images_in_split} images) "
          f"written to {out_path} (encoder: {encoder_description(model.config.finetune_from)})")
    if args.report is not None:
        # Imported here: trainer.evaluation.report imports trainer.baselines, which imports this module (and matplotlib is slow).
        from trainer.evaluation.report import write_evaluation_report
        page = write_evaluation_report(args.report, checkpoint=args.checkpoint, data=args.data, split=args.split,
                                       predictions=predictions, references=references, scores=scores,
                                       attention=attention, grid_size=model.config.grid_size, image_size=image_size)
        print(f"report written to {page}")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
