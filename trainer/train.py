"""Train a Show-Attend-Tell captioner.

    accelerate launch trainer/train.py --config configs/demo.yaml [--resume latest|CKPT_DIR] [key=value ...]
    python trainer/train.py --config configs/demo.yaml train.max_steps=20

Model and optimizer go through ``accelerator.prepare`` (DDP); the WebDataset loader does not (batches are moved to the
device here). Each epoch's loader is a pure function of (seed, epoch, rank, world size), and the checkpoint records the
(epoch, batch) position plus every rank's RNG state, so ``--resume`` continues exactly where the run stopped.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # before imports: trainer/evaluate.py shadows `evaluate`

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from typing import Iterator  # noqa: E402

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import broadcast_object_list  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from data_pipelines.stream import build_train_loader, check_feature_cache  # noqa: E402
from data_pipelines.vocab import Vocabulary  # noqa: E402
from modeling import Captioner, CaptionerConfig  # noqa: E402
from modeling.encoder import backbone_fingerprint  # noqa: E402
from trainer.checkpoint import CheckpointError, resolve_resume, step_checkpoint_dir  # noqa: E402
from trainer.config import TrainConfig, flatten_scalars, load_config  # noqa: E402
from trainer.losses import caption_loss  # noqa: E402
from trainer.rng_state import seed_everything  # noqa: E402
from trainer.run_control import StopRequest, iterate_isolated  # noqa: E402
from trainer.schedules import lr_multiplier, teacher_forcing_ratio  # noqa: E402
from trainer.train_state import Progress, restore_training_checkpoint, save_training_checkpoint  # noqa: E402
from trainer.validation import model_input, validate  # noqa: E402

logger = logging.getLogger("trainer.train")
LOG_FILE = "train_log.jsonl"


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
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        sys.exit(f"error: WORLD_SIZE={launched} processes were launched but Accelerate formed a group of "
                 f"{accelerator.num_processes} ({accelerator.distributed_type}); on CPU launch with "
                 f"`accelerate launch --config_file launch/cpu_2proc.yaml` (or --multi_gpu with ACCELERATE_USE_CPU=1)")
    return accelerator


def model_config(config: TrainConfig, vocab: Vocabulary) -> CaptionerConfig:
    return CaptionerConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                           **vars(config.model))


def data_position(progress: Progress, batches_per_epoch: int) -> Progress:
    """The position saved in a checkpoint: a finished epoch is stored as the start of the next one."""
    if progress.batch_in_epoch >= batches_per_epoch:
        return Progress(**{**vars(progress), "epoch": progress.epoch + 1, "batch_in_epoch": 0})
    return progress


class RunLog:
    """Scalars to TensorBoard (through Accelerate) and to ``output_dir/train_log.jsonl`` on the main process."""

    def __init__(self, accelerator: Accelerator, output_dir: Path):
        self.accelerator = accelerator
        self.path = output_dir / LOG_FILE

    def scalars(self, values: dict, step: int) -> None:
        self.accelerator.log(values, step=step)
        if self.accelerator.is_main_process:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, "wall_time": time.time(), **values}) + "\n")

    def validation(self, result, step: int) -> None:
        self.scalars({f"val/{name}": value for name, value in result.metrics.items()}, step)
        if self.accelerator.is_main_process:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
            writer.add_text("val/samples", result.samples_markdown, step)
            if result.attention_image is not None:
                writer.add_image("val/attention", result.attention_image, step)
            writer.flush()


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
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir / "config.yaml")
    accelerator.init_trackers("tensorboard", config=flatten_scalars(config.to_dict()))
    log = RunLog(accelerator, output_dir)
    stop = StopRequest()
    train(accelerator, config, model, unwrapped, optimizer, scheduler, vocab, progress, log, stop)
    accelerator.end_training()
    return 0


def build_training_state(args, config: TrainConfig, accelerator: Accelerator, vocab: Vocabulary):
    """Prepared model and optimizer, LR scheduler and progress: fresh, or restored from ``--resume``."""
    output_dir = Path(config.output_dir)
    seed_everything(config.seed)  # identical initial weights on every rank
    model = Captioner(model_config(config, vocab))
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


def train(accelerator, config, model, unwrapped, optimizer, scheduler, vocab, progress, log, stop) -> None:
    """The epoch / micro-batch loop; validates, checkpoints and honours stop requests at optimizer-step boundaries."""
    world, rank = accelerator.num_processes, accelerator.process_index
    pad_id = vocab.pad_id
    bar = tqdm(total=config.train.max_steps, initial=progress.step, disable=not accelerator.is_main_process,
               desc="train", dynamic_ncols=True)
    interval_start, interval_samples = time.perf_counter(), 0
    checkpointed_step = validated_step = progress.step if progress.step else None
    batches_per_epoch = 0
    micro_batch_losses: list[torch.Tensor] = []  # (loss, ce, attention_reg) of the current step's micro-batches

    def checkpoint(target=None, keep_last=config.checkpoint.keep_last) -> None:
        nonlocal checkpointed_step
        position = data_position(progress, batches_per_epoch)
        save_training_checkpoint(accelerator, target or step_checkpoint_dir(config.output_dir, progress.step),
                                 unwrapped, optimizer, scheduler, vocab, config, position, keep_last)
        checkpointed_step = progress.step if target is None else checkpointed_step

    def run_validation() -> None:
        nonlocal validated_step
        result = validate(accelerator, unwrapped, vocab, config)
        cider = result.metrics.get("CIDEr") if accelerator.is_main_process else None
        cider = broadcast_object_list([cider])[0]
        if accelerator.is_main_process:
            log.validation(result, progress.step)
            logger.info("step %d validation on %d images: %s", progress.step, result.num_images,
                        {name: round(value, 4) for name, value in result.metrics.items()})
        validated_step = progress.step
        if cider is not None and (progress.best_cider is None or cider > progress.best_cider):
            progress.best_cider, progress.best_step = cider, progress.step
            checkpoint(Path(config.output_dir) / "best", keep_last=None)

    def paused() -> bool:
        return 0 < config.train.stop_at_step <= progress.step < config.train.max_steps

    while progress.step < config.train.max_steps and not stop.requested and not paused():
        loader = build_train_loader(config.data.root, vocab, batch_size=config.train.batch_size, epoch=progress.epoch,
                                    seed=config.seed, rank=rank, world_size=world, num_workers=config.data.num_workers,
                                    captions_per_image=config.data.captions_per_image,
                                    max_caption_len=config.data.max_caption_len, image_size=config.data.image_size,
                                    features_root=config.data.features, augment=config.data.augment,
                                    resampled=config.data.resampled, shuffle_buffer=config.data.shuffle_buffer)
        batches_per_epoch = len(loader)
        for batch_index, batch in enumerate(iterate_isolated(loader)):
            if batch_index < progress.batch_in_epoch:  # consumed before the checkpoint we resumed from
                continue
            ratio = teacher_forcing_ratio(progress.step, config.teacher_forcing)
            with accelerator.accumulate(model):
                inputs = model_input(batch).to(accelerator.device, non_blocking=True)
                captions = batch["captions"].to(accelerator.device, non_blocking=True)
                output = model(inputs, captions, teacher_forcing_ratio=ratio)
                loss = caption_loss(output.logits, output.alphas, captions.flatten(0, 1)[:, 1:], pad_id,
                                    config.loss.attention_lambda, config.loss.label_smoothing)
                accelerator.backward(loss.total)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(unwrapped.trainable_parameters(),
                                                            config.train.max_grad_norm or float("inf"))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            micro_batch_losses.append(torch.stack([loss.total, loss.cross_entropy, loss.attention_reg]).detach())
            progress.batch_in_epoch = batch_index + 1
            progress.samples_seen += len(batch["image_id"]) * world
            interval_samples += len(batch["image_id"]) * world
            if not accelerator.sync_gradients:
                continue
            step_losses, micro_batch_losses = torch.stack(micro_batch_losses).mean(dim=0), []
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            progress.step += 1
            bar.update(1)
            if progress.step % config.logging.every_steps == 0 or progress.step == config.train.max_steps:
                norm = torch.as_tensor(grad_norm, dtype=torch.float32, device=accelerator.device).reshape(1)
                values = accelerator.reduce(torch.cat([step_losses.float(), norm]), reduction="mean").tolist()
                elapsed = time.perf_counter() - interval_start
                scalars = {"train/loss": values[0], "train/ce": values[1], "train/attention_reg": values[2],
                           "train/grad_norm": values[3], "train/teacher_forcing_ratio": ratio, "train/lr": lr,
                           "train/samples_per_s": interval_samples / max(elapsed, 1e-9)}
                log.scalars(scalars, progress.step)
                bar.set_postfix(loss=f"{values[0]:.3f}", lr=f"{lr:.2e}", sps=f"{scalars['train/samples_per_s']:.1f}")
                interval_start, interval_samples = time.perf_counter(), 0
            paused_at = time.perf_counter()
            if config.eval.every_steps and progress.step % config.eval.every_steps == 0:
                run_validation()
            if config.checkpoint.every_steps and progress.step % config.checkpoint.every_steps == 0:
                checkpoint()
            interval_start += time.perf_counter() - paused_at  # samples/s counts training time only
            if progress.step >= config.train.max_steps or stop.poll(accelerator) or paused():
                break
        else:
            progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
    bar.close()
    if stop.requested:
        logger.warning("stop requested (signal %s): saving a checkpoint at step %d and exiting", stop.signal_name,
                       progress.step)
    elif paused():
        logger.info("train.stop_at_step=%d reached: checkpointing; continue with --resume latest", progress.step)
    elif validated_step != progress.step:
        run_validation()
    if checkpointed_step != progress.step:
        checkpoint()


if __name__ == "__main__":
    sys.exit(main())
