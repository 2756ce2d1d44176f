"""Export a checkpoint to ONNX graphs that onnxruntime runs, plus what decoding needs, and optionally verify them.

    python -m trainer.export --checkpoint CKPT --out DIR [--verify IMAGE ...] [decoding flags: --beam-size 3 ...]
    showattend-export --checkpoint CKPT [--out DIR] --push-to-hub ORG/NAME [--private]

DIR gets ``encoder.onnx`` (pixels -> features, attention projection, initial state), ``decoder_step.onnx`` (one step:
words + state -> log-probabilities, state, attention), ``vocab.json``, ``config.json``, ``export.json`` (special ids,
image size) and a README.md model card; ``trainer.inference.onnx_search.OnnxCaptioner`` captions with them (numpy only).
``--verify`` captions the images with onnxruntime and with the eager model and prints one JSON line:
``{"captions_identical", "encoder", "max_feature_diff", "max_log_prob_diff", "images", "onnx_captions",
"eager_captions"}``;
the exit status is 1 when a caption differs. DIR must be new, empty or an earlier export (only its files are replaced).
``--push-to-hub`` uploads the export (with ``--out``) or the checkpoint folder itself (without) with its model card
to a Hugging Face Hub repository (``trainer.inference.hub_push``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from data_pipelines.safe_write import replaced_on_success, write_file
from trainer.inference.arguments import add_decoding_arguments, at_least, options_from_args, with_flag_names
from trainer.inference.model_card import card_facts, read_card_data, train_config_of, write_export_card
from trainer.inference.onnx_search import ENCODER_FILE, EXPORT_CONFIG_FILE, EXPORT_FILES, STEP_FILE, checked_options
from trainer.inference.pipeline import load_for_inference

OPSET = 18


class EncoderGraph(nn.Module):
    """pixels -> (features, projected, hidden, cell): everything decoding computes once per image."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor):
        features = self.model.encode(pixels)
        hidden, cell = self.model.decoder.init_state(features)
        return features, self.model.decoder.attention.project_features(features), hidden, cell


class StepGraph(nn.Module):
    """(words, hidden, cell, features, projected) -> (log-probabilities, hidden, cell, attention weights)."""

    def __init__(self, model):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, words, hidden, cell, features, projected):
        logits, (hidden, cell), alpha = self.decoder.step(words, (hidden, cell), features, projected)
        return torch.log_softmax(logits.float(), dim=-1), hidden, cell, alpha


def out_dir_error(out: Path, checkpoint: Path) -> str | None:
    """Why ``out`` cannot receive an export (it would replace files we did not write), or None."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; give a folder"
    if out.resolve() == checkpoint.resolve() or checkpoint.resolve() in out.resolve().parents:
        return f"--out {out} is inside --checkpoint {checkpoint}: export to a folder of its own"
    if out.is_dir():
        foreign = sorted(path.name for path in out.iterdir() if path.name not in EXPORT_FILES)
        if foreign or (any(out.iterdir()) and not (out / EXPORT_CONFIG_FILE).is_file()):
            return f"--out {out} holds files that are not an export ({foreign[:3] or 'no export.json'}); not replaced"
    return None


def export(checkpoint: Path, out: Path, image_size: int | None = None) -> Path:
    """Write the export of ``checkpoint`` into ``out`` (see the module docstring); returns ``out``."""
    model, vocab, size = load_for_inference(checkpoint, image_size)
    model = model.float().eval()
    out.mkdir(parents=True, exist_ok=True)
    pixels = torch.zeros(2, 3, size, size)
    rows = torch.export.Dim("rows")
    with replaced_on_success(out / ENCODER_FILE) as temporary:
        torch.onnx.export(EncoderGraph(model).eval(), (pixels,), str(temporary), dynamo=True, opset_version=OPSET,
                          input_names=["pixels"], output_names=["features", "projected", "hidden", "cell"],
                          dynamic_shapes={"pixels": {0: torch.export.Dim("images")}}, verbose=False)
    with torch.no_grad():
        features, projected, hidden, cell = EncoderGraph(model)(pixels)
    words = torch.full((2,), vocab.bos_id, dtype=torch.long)
    with replaced_on_success(out / STEP_FILE) as temporary:
        torch.onnx.export(StepGraph(model).eval(), (words, hidden, cell, features, projected), str(temporary),
                          dynamo=True, opset_version=OPSET, verbose=False,
                          input_names=["words", "hidden", "cell", "features", "projected"],
                          output_names=["log_probs", "hidden_out", "cell_out", "alpha"],
                          dynamic_shapes={"words": {0: rows}, "hidden": {0: rows}, "cell": {0: rows},
                                          "features": {0: rows}, "projected": {0: rows}})
    for name in ("vocab.json", "config.json"):
        write_file(out / name, (checkpoint / name).read_bytes())
    config = model.config
    write_file(out / EXPORT_CONFIG_FILE, json.dumps({
        "format": "showattend-onnx", "opset": OPSET, "image_size": size, "bos_id": config.bos_id,
        "eos_id": config.eos_id, "pad_id": config.pad_id, "grid_size": config.grid_size}, indent=2) + "\n")
    facts = read_card_data(checkpoint) or card_facts(out, train_config_of(checkpoint), None, None, None)
    facts["image_size"] = size
    write_export_card(out, facts)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trainer.export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint dir (model + config + vocab.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the ONNX graphs (new, empty or an export); required unless --push-to-hub")
    parser.add_argument("--image-size", type=at_least(1), default=None, help="default: the checkpoint's")
    parser.add_argument("--verify", nargs="+", type=Path, default=None, metavar="IMAGE",
                        help="caption these with onnxruntime and the eager model; exit 1 when a caption differs")
    parser.add_argument("--push-to-hub", default=None, metavar="ORG/NAME",
                        help="upload the export (with --out) or the checkpoint (without) to this Hub repository")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    add_decoding_arguments(parser)  # for --verify
    args = parser.parse_args(argv)
    try:
        args.options = checked_options(options_from_args(args), {})
    except ValueError as error:
        parser.error(with_flag_names(str(error)))
    if args.out is None and args.push_to_hub is None:
        parser.error("--out is required (or --push-to-hub to upload the checkpoint itself)")
    if args.out is None and args.verify is not None:
        parser.error("--verify needs --out")
    return args


def push(folder: Path, repo_id: str, private: bool) -> None:
    from trainer.inference.hub_push import push_to_hub

    try:
        url = push_to_hub(folder, repo_id, private=private)
    except Exception as error:  # noqa: BLE001 - no token, no network, a refused file: one line
        sys.exit(f"error: --push-to-hub {repo_id}: {error}")
    print(f"pushed {folder} to {repo_id}: {url}", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.out is None:
        push(args.checkpoint, args.push_to_hub, args.private)
        return 0
    error = out_dir_error(args.out, args.checkpoint)
    if error:
        sys.exit(f"error: {error}")
    try:
        import onnxruntime  # noqa: F401 - fail before exporting: verifying and using the export need it
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError as missing:
        sys.exit(f"error: {missing.name} is not installed: pip install 'showattend[export]'")
    try:
        export(args.checkpoint, args.out, args.image_size)
    except (OSError, ValueError) as failure:
        sys.exit(f"error: {failure}")
    print(f"exported {args.checkpoint} to {args.out}", file=sys.stderr)
    identical = True
    if args.verify is not None:
        from trainer.inference.export_verify import verify_export

        report = verify_export(args.checkpoint, args.out, args.verify, args.options, args.suppress_unk, args.image_size)
        print(json.dumps(report))
        identical = report["captions_identical"]
    if identical and args.push_to_hub is not None:
        push(args.out, args.push_to_hub, args.private)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
