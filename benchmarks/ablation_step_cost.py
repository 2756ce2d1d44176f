"""Relative cost of one training step for each ablation row, measured interleaved in one process.

    python -m benchmarks.ablation_step_cost [--rows baseline captions_1_batch_32 ...] [--rounds 5] [--json PATH]

The ablation's seconds/step come from separate runs on a shared machine, so they carry whatever else ran at the time.
Here every row's step (forward, loss, backward, clipping, AdamW on cached-feature-sized inputs, demo vocabulary) is
timed round-robin in the same process; the ratio to the baseline row is what a wall-clock budget needs.
Rows whose overrides do not load (e.g. a config key this checkout lacks) are reported as skipped.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.ablation import REPO, ROWS
from data_pipelines.safe_write import write_file
from modeling import Captioner, CaptionerConfig
from trainer.config.schema import load_config
from trainer.training.losses import caption_loss
from trainer.training.schedules import teacher_forcing_ratio

VOCAB_SIZE = 40  # the synthetic presets have 30-45 words plus specials
WORDS = 12  # predicted positions per caption


def make_row(overrides: list[str]):
    """(step function, description) of one row, from configs/demo.yaml plus the row's overrides."""
    config = load_config(REPO / "configs" / "demo.yaml", ["data.root=unused", *overrides])
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=VOCAB_SIZE, **vars(config.model))).train()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=config.optim.lr)
    side = config.data.image_size // 32
    images, per_image = config.train.global_batch_size, config.data.captions_per_image
    features = torch.randn(images, 2048, side, side) + 20
    captions = torch.randint(4, VOCAB_SIZE, (images, per_image, WORDS + 1))
    captions[..., 0] = model.config.bos_id
    lengths = torch.randint(6, WORDS + 1, (images, per_image, 1))
    positions = torch.arange(WORDS + 1)
    captions = torch.where(positions == lengths, model.config.eos_id, captions)
    captions = torch.where(positions > lengths, model.config.pad_id, captions)
    ratio = teacher_forcing_ratio(config.train.max_steps // 2, config.teacher_forcing)

    def step() -> None:
        output = model(features, captions, teacher_forcing_ratio=ratio)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1)[:, 1:], model.config.pad_id,
                            config.loss.attention_lambda)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), config.train.max_grad_norm)
        optimizer.step()

    return step


def measure(rows: list[str], rounds: int, steps_per_round: int) -> dict:
    """Row -> {"seconds_per_step", "relative"} (median over rounds; rounds alternate between rows)."""
    steps, skipped = {}, {}
    for name in rows:
        try:
            steps[name] = make_row(ROWS[name][1])
        except ValueError as error:
            skipped[name] = str(error)
    for step in steps.values():
        step()  # warm-up
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(steps_per_round):
                step()
            times[name].append((time.perf_counter() - started) / steps_per_round)
    base = statistics.median(times["baseline"]) if "baseline" in times else None
    result = {name: {"seconds_per_step": round(statistics.median(values), 4),
                     "relative": round(statistics.median(values) / base, 3) if base else None}
              for name, values in times.items()}
    result.update({name: {"skipped": reason} for name, reason in skipped.items()})
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-round", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = ["baseline", *[name for name in args.rows if name != "baseline"]]
    result = {"threads": torch.get_num_threads(), "rows": measure(rows, args.rounds, args.steps_per_round)}
    for name, values in result["rows"].items():
        print(f"{name:24} {values}")
    if args.json:
        write_file(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
