"""Train a Show-Attend-Tell captioner.

    accelerate launch trainer/train.py --config configs/demo.yaml [--resume latest|auto|CKPT_DIR] [--overwrite]
        [--allow-data-change] [key=value ...]
    python trainer/train.py --config configs/demo.yaml train.max_steps=20

Model and optimizer go through ``accelerator.prepare`` (DDP); the WebDataset loader does not (batches are moved to the
device here). ``train.global_batch_size`` is split into micro-batches and accumulation for the number of processes
(``trainer.training.batch_plan``); each epoch's data order depends on the seed and the global batch's lanes, not on the number
of processes, and the checkpoint records the (epoch, step in epoch) position, so ``--resume`` continues exactly where
the run stopped, on any number of processes. A process that dies or hangs is named by the survivors, which exit
(``trainer.distributed.rank_watchdog``, ``distributed.timeout_s``). What an existing ``output_dir`` allows is decided in
``trainer.checkpointing.run_dir``. Exit code: 0 when the run finished (or paused at ``train.stop_at_step``), 143 / 130 after a
SIGTERM / Ctrl-C (with a checkpoint), 1 with a one-line error otherwise (a lost rank included).
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
from accelerate.utils import InitProcessGroupKwargs, broadcast_object_list

from data_pipelines.data_root import DataRoot, RemoteDataError
from data_pipelines.feature_cache import check_feature_cache
from data_pipelines.stream import check_splits
from data_pipelines.vocab import Vocabulary
from modeling import Captioner
from modeling.encoder import backbone_fingerprint
from modeling.sampling import CaptionSampler
from trainer.checkpointing.checkpoint import STATE_FILE, CheckpointError, check_compatible, load_checkpoint, verify_checkpoint
from trainer.checkpointing.rng_state import seed_everything
from trainer.checkpointing.run_dir import (
    BEST_DIR,
    RESUME_CHOICES,
    best_of_run,
    check_output_dir_name,
    claim_output_dir,
    new_run_id,
    truncate_log,
)
from trainer.checkpointing.run_lock import RunDirInUse, RunLock
from trainer.checkpointing.state_checks import check_best_state
from trainer.checkpointing.train_state import Progress, restore_training_checkpoint
from trainer.config.schema import TrainConfig, captioner_config, flatten_scalars, load_config
from trainer.distributed.process_group import check_process_group
from trainer.distributed.rank_watchdog import RankWatchdog
from trainer.distributed.run_control import StopRequest
from trainer.scst.loop import ScstTrainingLoop, build_reward
from trainer.training.batch_plan import BatchPlan, plan_for
from trainer.training.loop import TrainingLoop, data_order
from trainer.training.run_log import RunLog
from trainer.training.schedules import lr_multiplier
from trainer.training.speed_options import apply_speed_options, build_optimizer
from trainer.training.trackers import build_trackers

logger = logging.getLogger("trainer.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="experiment YAML (configs/*.yaml)")
    parser.add_argument("--resume", help=f"one of {RESUME_CHOICES} or a checkpoint directory: 'latest' continues from "
                        "the newest intact checkpoint in output_dir (an error when there is none), 'auto' too but "
                        "starts fresh when output_dir holds no checkpoint (for schedulers that relaunch one command)")
    parser.add_argument("--overwrite", action="store_true",
                        help="without --resume: move a run already in output_dir aside (to OUTPUT_DIR.replaced-TIME)")
    parser.add_argument("--allow-data-change", action="store_true",
                        help="--resume a checkpoint on a dataset other than the one it was trained on (its "
                        "fingerprint differs); refused without this flag")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=200 data.root=/x")
    return parser.parse_args(argv)


def build_accelerator(config: TrainConfig) -> Accelerator:
    """CPU runs build Accelerator(cpu=True) so several processes form a MULTI_CPU (gloo) group; collectives time out
    after ``distributed.timeout_s``. Gradient accumulation is set from the batch plan once the group size is known."""
    timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=config.distributed.timeout_s))
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                              log_with=build_trackers(config.logging.trackers, config.output_dir),
                              project_dir=config.output_dir,
                              step_scheduler_with_optimizer=False, kwargs_handlers=[timeout])
    check_process_group(accelerator)
    if config.mixed_precision == "fp16" and accelerator.device.type != "cuda":
        raise ValueError(f"config key 'mixed_precision' = 'fp16' needs a CUDA device (this run is on "
                         f"{accelerator.device.type}, where Accelerate would silently train in fp32); use 'no'")
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
    except RemoteDataError as error:  # raised again by a DataLoader worker: the message's last line is the cause
        sys.exit(f"error: {str(error).strip().splitlines()[-1]}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with exit_on_user_error():
        config = load_config(args.config, args.overrides)
        check_output_dir_name(config.output_dir)
    with exit_on_user_error():
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
        vocab = Vocabulary.load(DataRoot(config.data.root).join("vocab.json"))
        check_splits(config.data.root, ["train", config.eval.split], config.data.features)
        lock, checkpoint = claim_on_main_process(accelerator, args, config)
        model, optimizer, scheduler, progress = build_training_state(checkpoint, config, accelerator, vocab, plan,
                                                                     args.allow_data_change)
    if accelerator.is_main_process:
        lock.record(run_id=progress.run_id)
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / "config.yaml")
        dropped = truncate_log(output_dir, progress.step)
        if dropped:
            logger.info("dropped %d line(s) after step %d from the train log (re-logged by this run)", dropped,
                        progress.step)
    accelerator.init_trackers("tensorboard", config=flatten_scalars(config.to_dict()))
    stop = StopRequest()
    with exit_on_user_error():
        loop_arguments = (accelerator, config, model, optimizer, scheduler, vocab, progress,
                          RunLog(accelerator, output_dir), stop, plan)
        if config.train.objective == "scst":
            loop = ScstTrainingLoop(*loop_arguments, reward=build_reward(accelerator, config, vocab))
        else:
            loop = TrainingLoop(*loop_arguments)
        if config.train.init_from and progress.step == 0:
            loop.validate()  # the starting weights' score: the stage's best checkpoint is never worse than its start
        run_watched(loop, watchdog)
    accelerator.end_training()
    if lock is not None:
        lock.release()
    return stop.exit_code


def on_every_rank(accelerator: Accelerator, action):
    """Run ``action`` on the main process; its result, or the ValueError / CheckpointError / RunDirInUse it raises,
    reaches every rank."""
    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = action()
        except (CheckpointError, ValueError, RunDirInUse) as failure:
            error = str(failure)
    if accelerator.num_processes > 1:
        result, error = broadcast_object_list([result, error])
    if error is not None:
        raise CheckpointError(error)
    return result


def claim_on_main_process(accelerator: Accelerator, args, config: TrainConfig) -> tuple[RunLock | None, Path | None]:
    """The main process locks ``output_dir`` and decides where the run starts (``trainer.checkpointing.run_dir``); every rank gets
    the checkpoint to resume (None: fresh). Only the main process holds the lock (None elsewhere)."""
    claimed = {}

    def claim() -> str | None:
        inputs = {"data.root": config.data.root, "data.features": config.data.features,
                  "train.init_from": config.train.init_from}
        claimed["lock"], checkpoint = claim_output_dir(config.output_dir, args.resume, args.overwrite, inputs)
        return None if checkpoint is None else str(checkpoint)

    checkpoint = on_every_rank(accelerator, claim)
    return claimed.get("lock"), None if checkpoint is None else Path(checkpoint)


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


def build_training_state(checkpoint: Path | None, config: TrainConfig, accelerator: Accelerator, vocab: Vocabulary,
                         plan: BatchPlan, allow_data_change: bool = False):
    """Prepared model and optimizer, LR scheduler and progress: fresh (weights from ``train.init_from`` when set), or
    restored from ``checkpoint`` (chosen by ``trainer.checkpointing.run_dir.claim_output_dir``)."""
    output_dir = Path(config.output_dir)
    seed_everything(config.seed)  # identical initial weights on every rank
    model = Captioner(captioner_config(config.model, vocab))
    apply_speed_options(config, model)
    optimizer = build_optimizer(config, model.trainable_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_multiplier, max_steps=config.train.max_steps, config=config.schedule))
    if config.train.init_from and checkpoint is None:  # a new stage: another run's weights, this run's optimizer
        verify_checkpoint(config.train.init_from)  # names what is missing before the shapes are compared
        for note in check_compatible(config.train.init_from, model.config.to_dict(), vocab):
            logger.warning("train.init_from %s: %s", config.train.init_from, note)
        load_checkpoint(config.train.init_from, model)
        logger.info("initialised the weights from %s (fresh optimizer and schedule)", config.train.init_from)
    unwrapped = model  # prepare() moves it in place and wraps it (SCST: inside a CaptionSampler, see modeling.sampling)
    model, optimizer = accelerator.prepare(CaptionSampler(model) if config.train.objective == "scst" else model,
                                           optimizer)
    seed_everything(config.seed + accelerator.process_index)  # dropout / sampling differ per rank

    progress = Progress(run_id=broadcast_object_list([new_run_id()])[0])
    if checkpoint is not None:
        progress = restore_training_checkpoint(accelerator, checkpoint, unwrapped, optimizer, scheduler, vocab, config,
                                               data_order(config, plan), allow_data_change)
        best = best_of_run(output_dir, progress.run_id)
        if best is not None:
            check_best_state(best, output_dir / BEST_DIR / STATE_FILE)
        if best is not None and best.get("best_cider") is not None and (
                progress.best_cider is None or best["best_cider"] > progress.best_cider):
            progress.best_cider, progress.best_step = best["best_cider"], best["best_step"]
        logger.info("resumed from %s at step %d (epoch %d, step %d of the epoch)", checkpoint, progress.step,
                    progress.epoch, progress.step_in_epoch)
    if config.data.features:  # cached features must come from this model's frozen backbone
        check_feature_cache(config.data.features, config.model.encoder_weights, config.data.image_size,
                            config.data.root, backbone_fingerprint(unwrapped.encoder.backbone))
    return model, optimizer, scheduler, progress


if __name__ == "__main__":
    sys.exit(main())
