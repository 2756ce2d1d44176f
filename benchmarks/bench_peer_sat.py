"""Side by side with sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning: decoder training step and beam search.

    git clone https://github.com/sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning /path/to/sat
    python -m benchmarks.bench_peer_sat --sat-dir /path/to/sat [--quick] [--compile] [--dtype bfloat16] [--json PATH]

The tutorial is never vendored: its models.py (``DecoderWithAttention``) and caption.py
(``caption_image_beam_search``) are loaded from --sat-dir at run time. Its Encoder is never built (it would download
ImageNet weights); both decoders get the same region features (N, 49, 256) and the same captions.

Training step, same shapes and inputs for both: batch 32 captions, 20 predicted positions, vocab 10k, embedding 256,
attention 256, hidden 512, vector gate, dropout 0.5, Adam, cross-entropy + doubly stochastic term (lambda 1), caption
lengths drawn like COCO's (mean ~10.5 words). The tutorial's step is its train.py loop body written out here: train.py
itself is not loaded (it builds data loaders); its ``scores, _ = pack_padded_sequence(...)`` (train.py lines 179-180)
no longer unpacks on current torch, so the benchmark takes ``.data``, as later versions of the tutorial do. Ours is
``modeling.decoder.Decoder`` + ``trainer.training.losses.caption_loss``. The two are timed alternately within each repeat.

Beam search (beam 5, 32 images, at most 20 words): our batched ``beam_search``, the same function one image at a
time, and the tutorial's per-image ``caption_image_beam_search`` on its own decoder. caption.py is patched at load
time (see ``PEER_BEAM_PATCHES``): integer division for the parent beam index (``/`` on tensors is true division
since torch 1.5), the step limit 50 -> --max-len, and, when no beam has ended by then, the live beams become the
candidates (as in ours; its code would call max() on an empty list). Its image reading (scipy.misc.imread/imresize,
removed from SciPy) is replaced by stubs and its ``encoder`` by a function returning the precomputed features, so
only decoding is timed. Beam search decodes with freshly initialised decoders (seed 0), not the ones the training
part has just updated: a few Adam steps on these random-word captions already make the models end most captions
after one word, so how many steps they decode would depend on --steps/--repeats. With random weights no caption
ends early: every image runs all --max-len steps. Our batched and one-at-a-time captions must agree (checked,
printed). The load average is recorded: load slows the per-image loops far more than the batched search.
"ours_batched_products_only" times just the matrix products of the batched search's steps at its shapes (output
layer, LSTM, attention and gate): one at a time / that is the most any batched search of this model can gain here.
--dtype bfloat16 casts our decoder (as ``trainer.evaluate_checkpoint --dtype bfloat16``) for the beam search part.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms
from torch.nn.utils.rnn import pack_padded_sequence

from data_pipelines.safe_write import write_file
from modeling import CaptionerConfig
from modeling.beam_search import beam_search
from modeling.decoder import Decoder
from trainer.training.losses import caption_loss

PEER_REPO = "sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning"
PEER_BEAM_PATCHES = {  # caption.py text -> replacement, each must occur exactly once
    "prev_word_inds = top_k_words / vocab_size":
        "prev_word_inds = torch.div(top_k_words, vocab_size, rounding_mode='floor')",
    "if step > 50:": "if step >= max_steps:",
    "    i = complete_seqs_scores.index(max(complete_seqs_scores))":
        "    if not complete_seqs:\n"
        "        complete_seqs, complete_seqs_alpha = seqs.tolist(), seqs_alpha.tolist()\n"
        "        complete_seqs_scores = list(top_k_scores.squeeze(1))\n"
        "    i = complete_seqs_scores.index(max(complete_seqs_scores))",
}


def load_peer(sat_dir: Path, max_steps: int):
    """The tutorial's DecoderWithAttention class and its patched caption_image_beam_search, loaded from sat_dir."""
    models_path, caption_path = sat_dir / "models.py", sat_dir / "caption.py"
    missing = [str(path) for path in (models_path, caption_path) if not path.is_file()]
    if missing:
        raise SystemExit(f"--sat-dir {sat_dir}: missing {', '.join(missing)}; expected a checkout of {PEER_REPO} "
                         f"(git clone https://github.com/{PEER_REPO})")
    spec = importlib.util.spec_from_file_location("sat_models", models_path)
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)  # runs unchanged: it only imports torch/torchvision at module level

    source = caption_path.read_text()
    function = next((node for node in ast.parse(source).body
                     if isinstance(node, ast.FunctionDef) and node.name == "caption_image_beam_search"), None)
    if function is None:
        raise SystemExit(f"{caption_path}: no caption_image_beam_search function")
    code = ast.get_source_segment(source, function)
    for old, new in PEER_BEAM_PATCHES.items():
        if code.count(old) != 1:
            raise SystemExit(f"{caption_path}: expected {old!r} once in caption_image_beam_search, "
                             f"found it {code.count(old)} times (unknown version of the tutorial)")
        code = code.replace(old, new)
    namespace = {"torch": torch, "F": F, "np": np, "transforms": torchvision.transforms,
                 "device": torch.device("cpu"), "max_steps": max_steps,
                 "imread": lambda path: np.zeros((1, 1, 3), dtype=np.uint8), "imresize": lambda image, size: image}
    exec(compile(code, str(caption_path), "exec"), namespace)  # noqa: S102 - the patched tutorial function
    return models.DecoderWithAttention, namespace["caption_image_beam_search"]


def make_batches(count: int, rows: int, words: int, vocab: int, config: CaptionerConfig, seed: int):
    """Features (rows, 49, D) and captions (rows, words+1): <bos>, w_1..w_n, <eos>, pad; n ~ COCO-like lengths."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        features = torch.randn(rows, config.grid_size ** 2, config.feature_dim, generator=generator)
        captions = torch.randint(4, vocab, (rows, words + 1), generator=generator)
        captions[:, 0] = config.bos_id
        lengths = (10.5 + 2.5 * torch.randn(rows, generator=generator)).round().long().clamp(5, words - 1)
        positions = torch.arange(words + 1)
        captions = torch.where(positions == lengths[:, None] + 1, config.eos_id, captions)
        captions = torch.where(positions > lengths[:, None] + 1, config.pad_id, captions)
        batches.append((features, captions, (lengths + 2).unsqueeze(1)))  # tutorial: length incl. <start>, <end>
    return batches


def peer_train_step(decoder, optimizer, features, captions, caption_lengths):
    scores, sorted_captions, lengths, alphas, _ = decoder(features, captions, caption_lengths)
    scores = pack_padded_sequence(scores, lengths, batch_first=True).data
    targets = pack_padded_sequence(sorted_captions[:, 1:], lengths, batch_first=True).data
    loss = F.cross_entropy(scores, targets) + ((1.0 - alphas.sum(dim=1)) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def our_train_step(decoder, optimizer, features, captions, pad_id, teacher_forcing_ratio):
    logits, alphas = decoder(features, captions, teacher_forcing_ratio)
    loss = caption_loss(logits, alphas, captions, pad_id, attention_lambda=1.0).total
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def build_decoders(config: CaptionerConfig, PeerDecoder):
    """Ours and the tutorial's decoder at the benchmark's sizes, freshly initialised from seed 0."""
    torch.manual_seed(0)
    ours = Decoder(config)
    peer = PeerDecoder(attention_dim=config.attention_dim, embed_dim=config.embed_dim, decoder_dim=config.hidden_dim,
                       vocab_size=config.vocab_size, encoder_dim=config.feature_dim, dropout=config.dropout)
    return ours, peer


def timed(function, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sat-dir", type=Path, required=True, help=f"a checkout of {PEER_REPO}")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 step; 4 images for beam search")
    parser.add_argument("--compile", action="store_true", help="also time our decoder under torch.compile")
    parser.add_argument("--teacher-forcing", type=float, default=None,
                        help="also time ours with scheduled sampling at this ratio (the tutorial has none)")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--batch", type=int, default=32, help="captions per training step")
    parser.add_argument("--words", type=int, default=20, help="predicted positions per caption (T - 1)")
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per contestant and repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=32, help="images for beam search")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="our decoder's dtype for beam search (the tutorial's stays float32): bfloat16 runs the "
                             "matrix products in bfloat16, scores in float32, as trainer.evaluate_checkpoint --dtype")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if not args.sat_dir.is_dir():
        parser.exit(2, f"bench_peer_sat.py: --sat-dir {args.sat_dir} is not a directory; pass a checkout of "
                       f"{PEER_REPO} (git clone https://github.com/{PEER_REPO})\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.repeats, args.images = 1, 1, 4
    PeerDecoder, peer_beam_search = load_peer(args.sat_dir, args.max_len)

    config = CaptionerConfig(vocab_size=args.vocab_size, encoder_weights="none", attention_gate="vector",
                             dropout=0.5)
    load_before = os.getloadavg()
    ours, peer = build_decoders(config, PeerDecoder)
    ours.train(), peer.train()
    our_optimizer = torch.optim.Adam(ours.parameters(), lr=4e-4)
    peer_optimizer = torch.optim.Adam(peer.parameters(), lr=4e-4)
    batches = make_batches(args.steps, args.batch, args.words, args.vocab_size, config, seed=1)
    contestants = {
        "tutorial": lambda batch: peer_train_step(peer, peer_optimizer, *batch),
        "ours": lambda batch: our_train_step(ours, our_optimizer, batch[0], batch[1], config.pad_id, 1.0),
    }
    if args.teacher_forcing is not None:
        contestants[f"ours_teacher_forcing_{args.teacher_forcing}"] = lambda batch: our_train_step(
            ours, our_optimizer, batch[0], batch[1], config.pad_id, args.teacher_forcing)
    if args.compile:
        compiled = torch.compile(ours)
        contestants["ours_compiled"] = lambda batch: our_train_step(compiled, our_optimizer, batch[0], batch[1],
                                                                    config.pad_id, 1.0)
    mean_words = float(torch.cat([batch[2] for batch in batches]).float().mean() - 2)
    print(f"training step: {args.batch} captions, {args.words} positions (mean {mean_words:.1f} words), vocab "
          f"{args.vocab_size}, Adam, {torch.get_num_threads()} threads; captions/s per repeat")
    rates = {name: [] for name in contestants}
    for name, step in contestants.items():  # warm-up (and compilation)
        for batch in batches:
            step(batch)
    for repeat in range(args.repeats):
        for name, step in contestants.items():
            seconds = timed(lambda: [step(batch) for batch in batches], 1) / len(batches)
            rates[name].append(args.batch / seconds)
        print(f"  repeat {repeat + 1}: " + "  ".join(f"{name} {values[-1]:7.1f}" for name, values in rates.items())
              + f"  ratio {rates['ours'][-1] / rates['tutorial'][-1]:.2f}x")
    train_ratios = [o / p for o, p in zip(rates["ours"], rates["tutorial"])]
    result = {"batch": args.batch, "words": args.words, "vocab_size": args.vocab_size, "mean_words": mean_words,
              "threads": torch.get_num_threads(),
              "train_captions_per_s": {name: spread(values) for name, values in rates.items()},
              "train_ratio_ours_vs_tutorial": spread(train_ratios)}
    for name in contestants:
        if name != "tutorial":
            result[f"train_ratio_{name}_vs_tutorial"] = spread([o / p for o, p in zip(rates[name], rates["tutorial"])])

    ours, peer = build_decoders(config, PeerDecoder)  # untrained again: see the module docstring
    ours.eval(), peer.eval()
    features = make_batches(1, args.images, args.words, args.vocab_size, config, seed=2)[0][0]
    dtype = getattr(torch, args.dtype)
    ours.to(dtype)
    our_features = features.to(dtype)
    grid = config.grid_size

    def decode(batch):
        return beam_search(ours, batch, args.beam_size, args.max_len, config.bos_id, config.eos_id, config.pad_id)

    rows = args.images * args.beam_size
    hidden = torch.zeros(rows, config.hidden_dim, dtype=dtype)
    lstm_input = torch.zeros(rows, config.feature_dim + config.embed_dim, dtype=dtype)

    def batched_products():
        """Only the matrix products of the batched search's steps (output layer, LSTM, attention and gate on the
        hidden state), at its shapes: no search can go faster, so one at a time / this bounds the ratio."""
        for _ in range(steps):
            ours.output(hidden), ours.attention.hidden_proj(hidden), ours.attention.gate(hidden)
            F.linear(lstm_input, ours.lstm.weight_ih, ours.lstm.bias_ih)
            F.linear(hidden, ours.lstm.weight_hh, ours.lstm.bias_hh)

    special = {config.bos_id: "<start>", config.eos_id: "<end>"}
    word_map = {special.get(index, f"w{index}"): index for index in range(args.vocab_size)}
    beam_contestants = {
        "ours_batched": lambda: decode(our_features),
        "ours_one_at_a_time": lambda: [decode(our_features[i:i + 1]) for i in range(args.images)],
        "tutorial_per_image": lambda: [
            peer_beam_search(lambda image, i=i: features[i].view(1, grid, grid, -1), peer, "image", word_map,
                             args.beam_size) for i in range(args.images)],
    }
    beam_rates = {name: [] for name in beam_contestants}
    beam_rates["ours_batched_products_only"] = []
    print(f"beam search: beam {args.beam_size}, {args.images} images, at most {args.max_len} words, ours in "
          f"{args.dtype}; images/s")
    with torch.no_grad():
        together, alone = decode(our_features), [decode(our_features[i:i + 1]) for i in range(args.images)]
        steps = together.tokens.shape[1]
        same = all(torch.equal(together.tokens[i, :g.tokens.shape[1]], g.tokens[0]) for i, g in enumerate(alone))
        print(f"  {steps} steps decoded; batched == one at a time: {same}")
        beam_contestants["ours_batched_products_only"] = batched_products
        for function in beam_contestants.values():
            function()
        for repeat in range(args.repeats):
            for name, function in beam_contestants.items():
                beam_rates[name].append(args.images / timed(function, 1))
            batched = beam_rates["ours_batched"][-1]
            print(f"  repeat {repeat + 1}: " + "  ".join(f"{name} {values[-1]:7.2f}"
                                                          for name, values in beam_rates.items())
                  + f"  batched vs one at a time {batched / beam_rates['ours_one_at_a_time'][-1]:.2f}x"
                  + f"  vs tutorial {batched / beam_rates['tutorial_per_image'][-1]:.2f}x")
    result["beam"] = {"dtype": args.dtype, "images": args.images, "beam_size": args.beam_size, "max_len": args.max_len,
                      "decoded_steps": steps, "same_captions": same,
                      "images_per_s": {name: spread(values) for name, values in beam_rates.items()},
                      "ratio_batched_vs_one_at_a_time": spread(
                          [b / s for b, s in zip(beam_rates["ours_batched"], beam_rates["ours_one_at_a_time"])]),
                      "ratio_batched_vs_tutorial": spread(
                          [b / s for b, s in zip(beam_rates["ours_batched"], beam_rates["tutorial_per_image"])]),
                      "ratio_ceiling_products_only_vs_one_at_a_time": spread(
                          [b / s for b, s in zip(beam_rates["ours_batched_products_only"],
                                                 beam_rates["ours_one_at_a_time"])])}
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(f"summary (min / median / max over repeats), {result['threads']} threads, 1-min load average "
          f"{load_before[0]:.2f} before, {result['load_average']['after'][0]:.2f} after:")
    print(f"  training, ours vs tutorial        : {result['train_ratio_ours_vs_tutorial']} (target >= 1.5x)")
    print(f"  beam ({args.dtype}), batched vs one at a time: {result['beam']['ratio_batched_vs_one_at_a_time']} "
          f"(target >= 8x)")
    print(f"  beam ({args.dtype}), batched vs tutorial per image: {result['beam']['ratio_batched_vs_tutorial']}")
    print(f"  beam ({args.dtype}), ceiling: the batched matrix products alone vs one at a time: "
          f"{result['beam']['ratio_ceiling_products_only_vs_one_at_a_time']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_file(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
