"""The training loop: a small state object and named steps, read top to bottom in ``TrainingLoop.run``.

Per micro-batch ``train_step`` runs forward/backward (optimizer step when gradients sync). The micro-batches come from
``data_pipelines.train_stream``: for each optimizer step, one per lane of this process (``training.batch_plan``), and
the model's random draws (dropout, scheduled sampling) are seeded per (step, lane), so a step does not depend on how
many processes share its lanes. After each optimizer step ``at_step_boundary`` logs the interval (``log_interval``),
checkpoints (``maybe_checkpoint``) and validates (``maybe_validate``), in that order, so a failing validation never
costs the step's checkpoint; stop requests are honoured only there. A validation can decide that the run ends before
``train.max_steps`` (``training.stage_end``: ``eval.patience``, ``train.max_minutes``). ``finish`` checkpoints and
validates the last step once and writes ``run_summary.json``. Each step is a method, so tests drive them one by one
without a subprocess.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm

from data_pipelines.stream_samples import BrokenSampleCounter, model_input, stream_seed
from data_pipelines.train_stream import build_lane_loader
from trainer.checkpointing.checkpoint import step_checkpoint_dir, update_checkpoint_state
from trainer.checkpointing.train_state import Progress, save_training_checkpoint
from trainer.distributed.run_control import iterate_isolated
from trainer.inference.model_card import write_model_card
from trainer.training.batch_plan import BatchPlan
from trainer.training.best_checkpoint import keeps_as_best
from trainer.training.losses import caption_loss
from trainer.training.schedules import teacher_forcing_ratio
from trainer.training.stage_end import EndOfRun
from trainer.training.validation import validate

logger = logging.getLogger("trainer.train")


def data_position(progress: Progress, steps_per_epoch: int) -> Progress:
    """The position saved in a checkpoint: a finished epoch is stored as the start of the next one."""
    if progress.step_in_epoch >= steps_per_epoch:
        return Progress(**{**vars(progress), "epoch": progress.epoch + 1, "step_in_epoch": 0})
    return progress


def data_order(config, plan: BatchPlan) -> dict:
    """What an epoch's sample order depends on besides seed and epoch (recorded in checkpoints)."""
    return {"global_batch_size": plan.global_batch_size, "lanes": plan.lanes,
            "readers": max(1, config.data.num_workers)}


@dataclass
class LoopState:
    """What the loop carries between micro-batches besides the checkpointed ``Progress``."""

    progress: Progress
    steps_per_epoch: int = 0
    step_image_ids: list[str] = field(default_factory=list)  # this process's images of the current step
    micro_batch_losses: list[torch.Tensor] = field(default_factory=list)  # stat_names values per micro-batch
    step_losses: torch.Tensor | None = None  # their mean over the last optimizer step
    grad_norm: torch.Tensor | float = 0.0  # of the last optimizer step (before clipping)
    teacher_forcing_ratio: float = 1.0  # used by the last optimizer step
    lr: float = 0.0  # used by the last optimizer step
    interval_start: float = field(default_factory=time.perf_counter)  # training time only (pauses are added back)
    interval_samples: int = 0  # samples over all ranks since the last logged step
    checkpointed_step: int | None = None
    validated_step: int | None = None


class TrainingLoop:
    """Trains a prepared ``model`` (DDP-wrapped or not) until the run's end (``train.max_steps`` or what a validation
    decided), a stop request or ``stop_at_step``. This is the cross-entropy objective; trainer.scst.loop.ScstTrainingLoop
    overrides the loss and what it logs."""

    stat_names = ("train/loss", "train/ce", "train/attention_reg")  # what micro_batch_loss reports, in order

    def __init__(self, run, log, stop):
        """``run``: a ``trainer.training.run_setup.TrainingRun``; ``log``: a ``RunLog``; ``stop``: a
        ``StopRequest``."""
        accelerator, config, progress = run.accelerator, run.config, run.progress
        self.accelerator, self.config, self.model, self.plan = accelerator, config, run.model, run.plan
        self.lanes = self.plan.lanes_of(accelerator.process_index)
        self.unwrapped = accelerator.unwrap_model(run.model)
        self.optimizer, self.scheduler, self.vocab, self.log, self.stop = (run.optimizer, run.scheduler, run.vocab,
                                                                           log, stop)
        resumed = progress.step if progress.step else None  # a resumed step is checkpointed already
        self.state = LoopState(progress, checkpointed_step=resumed, validated_step=progress.validated_step)
        self.end_of_run = EndOfRun(config, run.run_end, first_step=progress.step, started=run.started)
        self.broken_samples = BrokenSampleCounter()  # one count for the run, over epochs and loader workers
        self.loader_options = config.train_loader_options(self.plan.micro_batch_size)
        self.sources = config.data_sources()
        self.data_order = data_order(config, self.plan)
        self.bar = tqdm(total=config.train.max_steps, initial=progress.step, desc="train", dynamic_ncols=True,
                        disable=not accelerator.is_main_process)

    @property
    def progress(self) -> Progress:
        return self.state.progress

    def run(self) -> None:
        """Epoch after epoch: build the epoch's loader from the step a resumed checkpoint reached, train."""
        if self.state.checkpointed_step is not None and self.validation_due() and not self.finished():
            self.validate()  # the run stopped after the checkpoint and before its validation finished
        while not self.finished():
            loader = build_lane_loader(self.sources, self.vocab, self.loader_options,
                                       self.plan.global_batch_size, self.lanes, epoch=self.progress.epoch,
                                       start_step=self.progress.step_in_epoch, broken=self.broken_samples)
            self.state.steps_per_epoch = loader.stream.steps_per_epoch
            for batch_index, batch in enumerate(iterate_isolated(loader)):
                if self.train_step(batch, batch_index) and self.at_step_boundary():
                    break
            else:
                self.progress.epoch, self.progress.step_in_epoch = self.progress.epoch + 1, 0
        self.finish()

    def paused(self) -> bool:
        """``train.stop_at_step`` reached before the run's end: checkpoint and exit, to be resumed later."""
        return 0 < self.config.train.stop_at_step <= self.progress.step < self.end_step()

    def end_step(self) -> int:
        return self.end_of_run.step(self.progress)

    def finished(self) -> bool:
        return self.progress.step >= self.end_step() or self.stop.requested or self.paused()

    def micro_batch_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy with (scheduled) teacher forcing: the loss to backpropagate and the values of
        ``stat_names`` (averaged over micro-batches and ranks, then logged)."""
        device, state = self.accelerator.device, self.state
        state.teacher_forcing_ratio = teacher_forcing_ratio(self.progress.step, self.config.teacher_forcing)
        inputs = model_input(batch).to(device, non_blocking=True)
        captions = batch["captions"].to(device, non_blocking=True)
        output = self.model(inputs, captions, teacher_forcing_ratio=state.teacher_forcing_ratio)
        loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1), self.vocab.pad_id,
                            self.config.loss.attention_lambda, self.config.loss.label_smoothing)
        return loss.total, torch.stack([loss.total, loss.cross_entropy, loss.attention_reg])

    def interval_scalars(self, elapsed: float) -> dict:
        """Logged besides the averaged ``stat_names``: what else describes the interval's steps."""
        return {"train/teacher_forcing_ratio": self.state.teacher_forcing_ratio}

    def train_step(self, batch: dict, batch_index: int) -> bool:
        """Forward and backward one micro-batch; True when it completed an optimizer step."""
        state, progress, accelerator = self.state, self.progress, self.accelerator
        lane = self.lanes[batch_index % len(self.lanes)]
        torch.manual_seed(stream_seed(self.config.seed, "model", progress.step, lane))
        with accelerator.accumulate(self.model):
            loss, stats = self.micro_batch_loss(batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                state.grad_norm = accelerator.clip_grad_norm_(self.unwrapped.trainable_parameters(),
                                                              self.config.train.max_grad_norm or float("inf"))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        state.micro_batch_losses.append(stats.detach().float())
        samples = len(batch["image_id"]) * accelerator.num_processes
        state.step_image_ids.extend(batch["image_id"])
        progress.samples_seen += samples
        state.interval_samples += samples
        if not accelerator.sync_gradients:
            return False
        state.step_losses, state.micro_batch_losses = torch.stack(state.micro_batch_losses).mean(dim=0), []
        state.lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        progress.step += 1
        progress.step_in_epoch += 1
        if self.config.logging.image_ids:  # every process's images, in lane order
            image_ids = gather_object(state.step_image_ids)
            if accelerator.is_main_process:
                self.log.image_ids(progress.step, progress.epoch, image_ids)
        state.step_image_ids = []
        self.bar.update(1)
        return True

    def at_step_boundary(self) -> bool:
        """Log, checkpoint, validate after an optimizer step; True when the loop must stop here."""
        self.log_interval()
        paused_at = time.perf_counter()
        self.maybe_checkpoint()
        self.maybe_validate()
        self.state.interval_start += time.perf_counter() - paused_at  # samples/s counts training time only
        return self.progress.step >= self.end_step() or self.stop.poll(self.accelerator) or self.paused()

    def log_interval(self) -> None:
        """Every ``logging.every_steps`` (and at the last step): rank-averaged losses and grad norm, lr, samples/s."""
        step, every = self.progress.step, self.config.logging.every_steps
        if step % every != 0 and step != self.end_step():
            return
        state, device = self.state, self.accelerator.device
        norm = torch.as_tensor(state.grad_norm, dtype=torch.float32, device=device).reshape(1)
        values = self.accelerator.reduce(torch.cat([state.step_losses.float(), norm]), reduction="mean").tolist()
        broken = torch.tensor([float(self.broken_samples.take())], device=device)
        broken = self.accelerator.reduce(broken, reduction="sum").item()
        elapsed = time.perf_counter() - state.interval_start
        scalars = {**dict(zip(self.stat_names, values[:-1])), "train/grad_norm": values[-1],
                   **self.interval_scalars(elapsed), "train/lr": state.lr,
                   "train/samples_per_s": state.interval_samples / max(elapsed, 1e-9), "data/broken_samples": broken}
        self.log.scalars(scalars, step)
        self.bar.set_postfix(loss=f"{values[0]:.3f}", lr=f"{state.lr:.2e}", sps=f"{scalars['train/samples_per_s']:.1f}")
        state.interval_start, state.interval_samples = time.perf_counter(), 0

    def validation_due(self) -> bool:
        """This step is a validation step (``eval.every_steps``) whose validation has not finished yet."""
        every, step = self.config.eval.every_steps, self.progress.step
        return bool(every) and step % every == 0 and self.state.validated_step != step

    def maybe_validate(self) -> None:
        if self.validation_due():
            self.validate()

    def maybe_checkpoint(self) -> None:
        every = self.config.checkpoint.every_steps
        if every and self.progress.step % every == 0:
            self.checkpoint()

    def validate(self) -> None:
        """Score the eval split, log it, decide the run's end when it is due (``training.stage_end``), keep
        ``output_dir/best`` when CIDEr-D improved (``training.best_checkpoint``), and record the result in this step's
        checkpoint (every rank calls this, and decides on what the main process measured). An exception is logged
        with its traceback; training goes on."""
        progress, accelerator = self.progress, self.accelerator
        try:
            result = validate(accelerator, self.unwrapped, self.vocab, self.config)
        except Exception:  # noqa: BLE001 - a validation bug must not end a run whose checkpoint is safe
            logger.exception("validation at step %d failed; training goes on (its checkpoint is not affected)",
                             progress.step)
            result = None
        main = accelerator.is_main_process
        cider = result.metrics.get("CIDEr") if result is not None and main else None
        elapsed = self.end_of_run.elapsed() if main else None
        new_best, evidence = (False, "") if cider is None else keeps_as_best(
            progress, cider, result.cider_per_image, self.config.eval.best_min_z)
        failed_on_main, cider, elapsed, new_best = broadcast_object_list(
            [(result is None, cider, elapsed, new_best)])[0]
        if result is None or failed_on_main:
            return
        if main:
            self.log.validation(result, progress.step)
            logger.info("step %d validation on %d images: %s", progress.step, result.num_images,
                        {name: round(value, 4) for name, value in result.metrics.items()})
        self.state.validated_step = progress.validated_step = progress.step
        decided = self.end_of_run.after_validation(progress, cider, elapsed)
        if decided and main:
            logger.info("%s", decided)
        if evidence:
            logger.info("%s", evidence)
        if new_best:
            progress.best_cider, progress.best_step = cider, progress.step
            self.save(Path(self.config.output_dir) / "best", keep_last=None)
            if accelerator.is_main_process:  # the folder meant to be shared carries a model card
                write_model_card(Path(self.config.output_dir) / "best", self.config, result.metrics, progress.step)
        if self.state.checkpointed_step == progress.step and accelerator.is_main_process:
            update_checkpoint_state(step_checkpoint_dir(self.config.output_dir, progress.step),
                                    best_cider=progress.best_cider, best_step=progress.best_step,
                                    validated_step=progress.step, stage_end=progress.stage_end,
                                    decay_end=progress.decay_end,
                                    evals_without_gain=progress.evals_without_gain, stop_reason=progress.stop_reason,
                                    reference_cider=progress.reference_cider, best_seen_cider=progress.best_seen_cider,
                                    streak_cider=progress.streak_cider, streak_length=progress.streak_length)

    def checkpoint(self) -> None:
        """``output_dir/checkpoints/step_N``, pruned to ``checkpoint.keep_last`` (every rank calls this)."""
        self.save(step_checkpoint_dir(self.config.output_dir, self.progress.step), self.config.checkpoint.keep_last)
        self.state.checkpointed_step = self.progress.step

    def save(self, target: Path, keep_last: int | None) -> None:
        position = data_position(self.progress, self.state.steps_per_epoch)
        save_training_checkpoint(self.accelerator, target, self.unwrapped, self.optimizer, self.scheduler, self.vocab,
                                 self.config, position, self.data_order, keep_last)

    def finish(self) -> None:
        """After the loop: checkpoint the last step once, then validate it unless stopping early; the main process
        writes ``run_summary.json``."""
        self.bar.close()
        step = self.progress.step
        if self.stop.requested:
            logger.warning("stop requested (signal %s): saving a checkpoint at step %d and exiting",
                           self.stop.signal_name, step)
        elif self.paused():
            logger.info("train.stop_at_step=%d reached: checkpointing; continue with --resume latest", step)
        if self.state.checkpointed_step != step:
            self.checkpoint()
        if not self.stop.requested and not self.paused() and self.state.validated_step != step:
            self.validate()
        if self.accelerator.is_main_process:
            self.end_of_run.report(self.progress, stopped=self.stop.requested, paused=self.paused())
