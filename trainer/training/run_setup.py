"""Set-up of a training run, shared by ``trainer/train.py`` and the tests: config + accelerator (+ how to start) ->
``TrainingRun`` (batch plan, vocabulary, prepared model and optimizer, LR schedule, progress), which ``build_loop``
turns into the loop that trains it.

Order: the batch plan for the process group; the vocabulary and the splits; the main process locks ``output_dir`` and
decides where the run starts (``trainer.checkpointing.run_dir``); the model is built with the same seed on every rank
(weights from ``train.init_from`` for a new stage), prepared, then restored from the checkpoint when resuming; a
feature cache is checked against the model's frozen backbone; the main process records the run in ``output_dir``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, broadcast_object_list

from data_pipelines.data_sources import mixture_vocabulary
from data_pipelines.feature_cache import check_feature_cache
from data_pipelines.stream import check_splits
from data_pipelines.vocab import Vocabulary
from modeling import Captioner
from modeling.sampling import CaptionSampler
from trainer.checkpointing.checkpoint import STATE_FILE, CheckpointError, check_compatible, load_checkpoint, verify_checkpoint
from trainer.checkpointing.rng_state import seed_everything
from trainer.checkpointing.run_dir import BEST_DIR, best_of_run, claim_output_dir, new_run_id, truncate_log
from trainer.checkpointing.run_lock import RunDirInUse, RunLock
from trainer.checkpointing.state_checks import check_best_state
from trainer.checkpointing.train_state import Progress, restore_training_checkpoint
from trainer.config.schema import TrainConfig, captioner_config
from trainer.distributed.process_group import check_process_group
from trainer.scst.loop import ScstTrainingLoop, build_reward
from trainer.training.batch_plan import BatchPlan, plan_for
from trainer.training.loop import TrainingLoop, data_order
from trainer.training.parameter_groups import parameter_groups
from trainer.training.schedules import RunEnd, scheduled_lr_multiplier
from trainer.training.speed_options import apply_speed_options, build_optimizer
from trainer.training.trackers import build_trackers

logger = logging.getLogger("trainer.train")


@dataclass
class TrainingRun:
    """A run ready to train. ``model`` is prepared (DDP-wrapped when there are several processes; for SCST a
    ``CaptionSampler`` around the Captioner); ``run_end`` is the end the LR schedule reads (the loop sets it);
    ``lock`` holds ``output_dir`` (main process only, else None); ``started``: ``time.perf_counter()`` when the set-up
    began (``train.max_minutes`` counts from there)."""

    accelerator: Accelerator
    config: TrainConfig
    plan: BatchPlan
    vocab: Vocabulary
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    progress: Progress
    run_end: RunEnd
    lock: RunLock | None = None
    started: float = field(default_factory=time.perf_counter)

    def release(self) -> None:
        """Let another run use ``output_dir``."""
        if self.lock is not None:
            self.lock.release()


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


def set_up_run(config: TrainConfig, accelerator: Accelerator, resume: str | None = None, overwrite: bool = False,
               allow_data_change: bool = False) -> TrainingRun:
    """The run ``config`` describes on ``accelerator``'s processes: fresh, or resumed as ``resume`` says (one of
    ``trainer.checkpointing.run_dir.RESUME_CHOICES`` or a checkpoint directory); ``overwrite`` moves an earlier run
    aside. Errors a user can fix are CheckpointError / FileNotFoundError / ValueError with one line."""
    started = time.perf_counter()
    plan = plan_for(config.train, accelerator.num_processes)
    accelerator.gradient_accumulation_steps = plan.accumulation
    logger.info("%s", plan.describe())
    sources = config.data_sources()
    vocab = mixture_vocabulary(sources, config.data.vocab)
    for source in sources:
        check_splits(source.root, ["train", config.eval.split], source.features)
    lock, checkpoint = claim_on_main_process(accelerator, config, resume, overwrite)
    run = TrainingRun(accelerator, config, plan, vocab, *build_training_state(
        checkpoint, config, accelerator, vocab, plan, allow_data_change), lock=lock, started=started)
    if accelerator.is_main_process:
        record_run(run)
    return run


def build_loop(run: TrainingRun, log, stop) -> TrainingLoop:
    """The loop of the run's objective (cross-entropy or SCST), logging to ``log`` and polling ``stop``."""
    if run.config.train.objective == "scst":
        return ScstTrainingLoop(run, log, stop, reward=build_reward(run.accelerator, run.config, run.vocab))
    return TrainingLoop(run, log, stop)


def record_run(run: TrainingRun) -> None:
    """Main process: the lock names the run, ``output_dir/config.yaml`` is this run's config, and train-log lines
    after the step it starts from are dropped (this run logs them again)."""
    output_dir = Path(run.config.output_dir)
    run.lock.record(run_id=run.progress.run_id)
    output_dir.mkdir(parents=True, exist_ok=True)
    run.config.save(output_dir / "config.yaml")
    dropped = truncate_log(output_dir, run.progress.step)
    if dropped:
        logger.info("dropped %d line(s) after step %d from the train log (re-logged by this run)", dropped,
                    run.progress.step)


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


def claim_on_main_process(accelerator: Accelerator, config: TrainConfig, resume: str | None,
                          overwrite: bool) -> tuple[RunLock | None, Path | None]:
    """The main process locks ``output_dir`` and decides where the run starts (``trainer.checkpointing.run_dir``);
    every rank gets the checkpoint to resume (None: fresh). Only the main process holds the lock (None elsewhere)."""
    claimed = {}

    def claim() -> str | None:
        inputs = {"data.root": config.data.root, "data.features": config.data.features, "data.vocab": config.data.vocab,
                  "train.init_from": config.train.init_from}
        for index, source in enumerate(config.data.sources):
            inputs.update({f"data.sources[{index}].root": source.root, f"data.sources[{index}].features": source.features})
        claimed["lock"], checkpoint = claim_output_dir(config.output_dir, resume, overwrite, inputs)
        return None if checkpoint is None else str(checkpoint)

    checkpoint = on_every_rank(accelerator, claim)
    return claimed.get("lock"), None if checkpoint is None else Path(checkpoint)


def build_training_state(checkpoint: Path | None, config: TrainConfig, accelerator: Accelerator, vocab: Vocabulary,
                         plan: BatchPlan, allow_data_change: bool = False):
    """Prepared model and optimizer, LR scheduler, progress and the run's end the scheduler reads: fresh (weights
    from ``train.init_from`` when set), or restored from ``checkpoint`` (chosen by
    ``trainer.checkpointing.run_dir.claim_output_dir``; the end it decided comes along)."""
    output_dir = Path(config.output_dir)
    seed_everything(config.seed)  # identical initial weights on every rank
    model = Captioner(captioner_config(config.model, vocab))
    apply_speed_options(config, model)
    optimizer = build_optimizer(config, parameter_groups(model, config.optim))
    run_end = RunEnd()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        scheduled_lr_multiplier, max_steps=config.train.max_steps, config=config.schedule, end=run_end))
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
        run_end.step = progress.stage_end if progress.decay_end is None else progress.decay_end
        logger.info("resumed from %s at step %d (epoch %d, step %d of the epoch)", checkpoint, progress.step,
                    progress.epoch, progress.step_in_epoch)
        if progress.stage_end is not None:
            logger.info("the run ends at step %d (decided by an earlier validation: %s)", progress.stage_end,
                        progress.stop_reason)
    for source in config.data_sources():  # cached features must come from this model's frozen backbone stages
        if source.features:
            check_feature_cache(source.features, config.model.encoder_weights, config.data.image_size, source.root,
                                unwrapped.encoder.backbone, weights_source(config, checkpoint))
    return model, optimizer, scheduler, progress, run_end


def weights_source(config: TrainConfig, checkpoint: Path | None) -> str:
    """Where the run's weights come from, as an error names it."""
    if checkpoint is not None:
        return f"checkpoint {checkpoint}"
    if config.train.init_from:
        return f"train.init_from {config.train.init_from}"
    return f"model.encoder_weights {config.model.encoder_weights!r}"
