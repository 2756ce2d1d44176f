"""Train a Show-Attend-Tell captioner.

    accelerate launch trainer/train.py --config configs/demo.yaml [--resume latest|CKPT_DIR] [key=value ...]
    python trainer/train.py --config configs/demo.yaml train.max_steps=20

Model and optimizer go through ``accelerator.prepare`` (DDP); the WebDataset loader does not (batches are moved to the
device here). Each epoch's loader is a pure function of (seed, epoch, rank, world size), and the checkpoint records the
(epoch, batch) position plus every rank's RNG state, so ``--resume`` continues exactly where the run stopped.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Iterator

import torch
from accelerate import Accelerator

from data_pipelines.features import check_feature_cache
from data_pipelines.vocab import Vocabulary
from modeling import Captioner
from modeling.encoder import backbone_fingerprint
from trainer.checkpoint import CheckpointError, resolve_resume
from trainer.config import TrainConfig, captioner_config, flatten_scalars, load_config
from trainer.loop import TrainingLoop
from trainer.rng_state import seed_everything
from trainer.process_group import check_process_group
from trainer.run_control import StopRequest
from trainer.run_log import RunLog
from trainer.schedules import lr_multiplier
from trainer.train_state import Progress, restore_training_checkpoint

logger = logging.getLogger("trainer.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="experiment YAML (configs/*.yaml)")
    parser.add_argument("--resume", help="'latest' (newest intact checkpoint in output_dir) or a checkpoint directory")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=200 data.root=/x")
    return parser.parse_args(argv)


def build_accelerator(config: TrainConfig) -> Accelerator:
    """CPU runs build Accelerator(cpu=True) so several processes form a MULTI_CPU (gloo) group."""
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                              gradient_accumulation_steps=config.train.grad_accum_steps, log_with="tensorboard",
                              project_dir=config.output_dir, step_scheduler_with_optimizer=False)
    check_process_group(accelerator)
    return accelerator


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Set-up errors caused by the config, data or checkpoint paths end the run with their message, no traceback."""
    try:
        yield
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with exit_on_user_error():
        config = load_config(args.config, args.overrides)
    accelerator = build_accelerator(config)
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format=f"[rank {accelerator.process_index}] %(levelname)s %(name)s: %(message)s")
    output_dir = Path(config.output_dir)
    if accelerator.device.type == "cpu" and config.mixed_precision != "no":
        logger.warning("mixed_precision=%s on a CPU: bf16/fp16 autocast is far slower than fp32 here",
                       config.mixed_precision)
    logger.info("world size %d (%s), device %s", accelerator.num_processes, accelerator.distributed_type,
                accelerator.device)

    with exit_on_user_error():
        vocab = Vocabulary.load(Path(config.data.root) / "vocab.json")
        model, optimizer, scheduler, progress = build_training_state(args, config, accelerator, vocab)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / "config.yaml")
    accelerator.init_trackers("tensorboard", config=flatten_scalars(config.to_dict()))
    TrainingLoop(accelerator, config, model, optimizer, scheduler, vocab, progress, RunLog(accelerator, output_dir),
                 StopRequest()).run()
    accelerator.end_training()
    return 0


def build_training_state(args, config: TrainConfig, accelerator: Accelerator, vocab: Vocabulary):
    """Prepared model and optimizer, LR scheduler and progress: fresh, or restored from ``--resume``."""
    output_dir = Path(config.output_dir)
    seed_everything(config.seed)  # identical initial weights on every rank
    model = Captioner(captioner_config(config.model, vocab))
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=config.optim.lr,
                                  betas=(config.optim.beta1, config.optim.beta2), eps=config.optim.eps,
                                  weight_decay=config.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_multiplier, max_steps=config.train.max_steps, config=config.schedule))
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    seed_everything(config.seed + accelerator.process_index)  # dropout / scheduled sampling differ per rank

    progress = Progress()
    if args.resume:
        checkpoint = resolve_resume(args.resume, output_dir)
        if checkpoint is None:
            logger.info("--resume latest: no intact checkpoint under %s, starting from scratch", output_dir)
        else:
            progress = restore_training_checkpoint(accelerator, checkpoint, unwrapped, optimizer, scheduler, vocab,
                                                   config)
            logger.info("resumed from %s at step %d (epoch %d, batch %d)", checkpoint, progress.step,
                        progress.epoch, progress.batch_in_epoch)
    if config.data.features:  # cached features must come from this model's frozen backbone
        check_feature_cache(config.data.features, config.model.encoder_weights, config.data.image_size,
                            config.data.root, backbone_fingerprint(unwrapped.encoder.backbone))
    return model, optimizer, scheduler, progress


if __name__ == "__main__":
    sys.exit(main())
