"""Train a Show-Attend-Tell captioner.

    accelerate launch trainer/train.py --config configs/demo.yaml [--resume latest|CKPT_DIR] [key=value ...]
    python trainer/train.py --config configs/demo.yaml train.max_steps=20

Model and optimizer go through ``accelerator.prepare`` (DDP); the WebDataset loader does not (batches are moved to the
device here). ``train.global_batch_size`` is split into micro-batches and accumulation for the number of processes
(``trainer.batch_plan``); each epoch's data order depends on the seed and the global batch's lanes, not on the number
of processes, and the checkpoint records the (epoch, step in epoch) position, so ``--resume`` continues exactly where
the run stopped, on any number of processes. A process that dies or hangs is named by the survivors, which exit
(``trainer.rank_watchdog``, ``distributed.timeout_s``).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs

from data_pipelines.features import check_feature_cache
from data_pipelines.vocab import Vocabulary
from modeling import Captioner
from modeling.encoder import backbone_fingerprint
from trainer.batch_plan import BatchPlan, plan_for
from trainer.checkpoint import CheckpointError, resolve_resume
from trainer.config import TrainConfig, captioner_config, load_config
from trainer.loop import TrainingLoop, data_order
from trainer.rng_state import seed_everything
from trainer.process_group import check_process_group
from trainer.rank_watchdog import RankWatchdog
from trainer.run_control import StopRequest
from trainer.run_log import RunLog, flatten_scalars
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
    """CPU runs build Accelerator(cpu=True) so several processes form a MULTI_CPU (gloo) group; collectives time out
    after ``distributed.timeout_s``. Gradient accumulation is set from the batch plan once the group size is known."""
    timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=config.distributed.timeout_s))
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                              log_with="tensorboard", project_dir=config.output_dir,
                              step_scheduler_with_optimizer=False, kwargs_handlers=[timeout])
    check_process_group(accelerator)
    return accelerator


def start_watchdog(config: TrainConfig, accelerator: Accelerator) -> RankWatchdog | None:
    """Heartbeats through the process group's store (several processes only)."""
    if accelerator.num_processes == 1:
        return None
    store = dist.distributed_c10d._get_default_store()  # the rendezvous store every rank already shares
    return RankWatchdog(store, accelerator.process_index, accelerator.num_processes,
                        config.distributed.timeout_s).start()


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
        plan = plan_for(config.train, accelerator.num_processes)
    accelerator.gradient_accumulation_steps = plan.accumulation
    logger.info("%s", plan.describe())
    watchdog = start_watchdog(config, accelerator)

    with exit_on_user_error():
        vocab = Vocabulary.load(Path(config.data.root) / "vocab.json")
        model, optimizer, scheduler, progress = build_training_state(args, config, accelerator, vocab, plan)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / "config.yaml")
    accelerator.init_trackers("tensorboard", config=flatten_scalars(config.to_dict()))
    loop = TrainingLoop(accelerator, config, model, optimizer, scheduler, vocab, progress,
                        RunLog(accelerator, output_dir), StopRequest(), plan)
    run_watched(loop, watchdog)
    accelerator.end_training()
    return 0


def run_watched(loop: TrainingLoop, watchdog: RankWatchdog | None) -> None:
    """Run the loop; when it fails because a rank was lost, exit with a message naming that rank."""
    try:
        loop.run()
    except Exception:
        message = watchdog.diagnose(wait_s=6 * watchdog.interval_s) if watchdog is not None else None
        if message is None:
            raise
        logger.error("%s", message)
        sys.exit(message)
    finally:
        if watchdog is not None:
            watchdog.stop()


def build_training_state(args, config: TrainConfig, accelerator: Accelerator, vocab: Vocabulary, plan: BatchPlan):
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
                                                   config, data_order(config, plan))
            logger.info("resumed from %s at step %d (epoch %d, step %d of the epoch)", checkpoint, progress.step,
                        progress.epoch, progress.step_in_epoch)
    if config.data.features:  # cached features must come from this model's frozen backbone
        check_feature_cache(config.data.features, config.model.encoder_weights, config.data.image_size,
                            config.data.root, backbone_fingerprint(unwrapped.encoder.backbone))
    return model, optimizer, scheduler, progress


if __name__ == "__main__":
    sys.exit(main())
