"""What a training run checkpoints besides weights: step, data position, scheduler, best metric, per-rank RNG."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from accelerate.utils import broadcast_object_list, gather_object

from data_pipelines.data_sources import mixture_fingerprint
from trainer.checkpointing.checkpoint import (
    STATE_FILE,
    CheckpointError,
    check_compatible,
    load_checkpoint,
    prune_checkpoints,
    verify_checkpoint,
    write_checkpoint,
)
from trainer.checkpointing.rng_state import capture_rng_state, restore_rng_state, seed_everything
from trainer.checkpointing.state_checks import FORMAT_VERSION, check_trainer_state
from trainer.config.schema import TrainConfig, flatten_scalars

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands. ``step_in_epoch`` counts the optimizer steps (global batches) of ``epoch`` already
    trained: a position in the epoch's global sample order, the same for any number of processes."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    samples_seen: int = 0
    best_cider: float | None = None
    best_step: int | None = None
    best_seen_cider: float | None = None  # the highest val CIDEr-D so far, kept by best/ or not (eval.patience counts from it)
    validated_step: int | None = None  # the last step whose validation finished
    run_id: str = ""  # set once when a run starts fresh, kept by every resume: the lineage best/ belongs to
    stage_end: int | None = None  # the step a validation decided the run ends at (None: train.max_steps)
    decay_end: int | None = None  # wsd: the step its decay reaches the floor, once a validation decided it
    evals_without_gain: int = 0  # validations in a row without a gain of eval.min_gain
    stop_reason: str = ""  # why stage_end was decided: "plateau" or "budget" (trainer.training.stage_end)
    # per-image val CIDEr-D of the run's first validation, by image id, when eval.best_min_z is set (main process only;
    # trainer.training.best_checkpoint), and the per-image sums over the validations in a row above it
    reference_cider: dict[str, float] | None = None
    streak_cider: dict[str, float] | None = None
    streak_length: int = 0


def weights_digest(model) -> str:
    """Short sha256 of the trainable weights (ranks of a healthy DDP run agree on it)."""
    digest = hashlib.sha256()
    for parameter in model.trainable_parameters():
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_training_checkpoint(accelerator, target: Path, model, optimizer, scheduler, vocab, config: TrainConfig,
                             progress: Progress, data_order: dict, keep_last: int | None = None) -> None:
    """Every rank calls this: RNG states and weight digests are gathered, the main process writes ``target``; a
    failed write (e.g. a full disk) raises CheckpointError on every rank, so none waits for the others forever.
    ``data_order``: what the epoch's sample order depends on besides seed and epoch (global batch, lanes, readers)."""
    per_rank = gather_object([{"rng": capture_rng_state(), "weights_digest": weights_digest(model)}])
    failure = None
    if accelerator.is_main_process:
        digests = [entry["weights_digest"] for entry in per_rank]
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks hold different weights at step {progress.step} (digests {digests}); "
                               "DDP is not synchronising")
        state = {
            "format_version": FORMAT_VERSION,
            **vars(progress),
            "scheduler": scheduler.state_dict(),
            "grad_scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
            "world_size": accelerator.num_processes,
            "data_order": data_order,
            "rank_weight_digests": digests,
            "rng": [entry["rng"] for entry in per_rank],
            "config_hash": config.hash(),
            "train_config": config.to_record(),
            "dataset_fingerprint": mixture_fingerprint(config.data_sources()),
        }
        try:
            write_checkpoint(target, model, optimizer, vocab, state)
            if keep_last is not None:
                prune_checkpoints(config.output_dir, keep_last)
        except CheckpointError as error:
            failure = str(error)
    if accelerator.num_processes > 1:
        failure = broadcast_object_list([failure])[0]
    if failure is not None:
        raise CheckpointError(failure)
    accelerator.wait_for_everyone()


def restore_training_checkpoint(accelerator, directory: Path, model, optimizer, scheduler, vocab,
                                config: TrainConfig, data_order: dict, allow_data_change: bool = False) -> Progress:
    """Load weights, optimizer, scheduler, scaler and this rank's RNG; returns the progress to continue from.

    The data position is (epoch, optimizer step in the epoch); the epoch's order depends on ``data_order`` (global
    batch, lanes, readers), never on the number of processes, so a checkpoint of N processes continues exactly on M.
    ``trainer_state.json`` is checked field by field first; a checkpoint of another dataset (fingerprint) is refused
    unless ``allow_data_change``; changed config fields are listed at WARNING.
    """
    state_path = Path(directory) / STATE_FILE
    state = check_trainer_state(verify_checkpoint(directory), state_path)
    notes = check_compatible(directory, model.config.to_dict(), vocab)
    for note in notes:
        logger.warning("resuming %s with a changed setting: %s", directory, note)
    check_same_dataset(directory, state, config, allow_data_change)
    if accelerator.is_main_process:
        changes = config_changes(state["train_config"], config.to_record())
        if changes:
            logger.warning("resuming %s with %d changed config field(s): %s", directory, len(changes),
                           "; ".join(changes))
    load_checkpoint(directory, model, optimizer)
    try:
        scheduler.load_state_dict(state["scheduler"])
        if accelerator.scaler is not None and state.get("grad_scaler"):
            accelerator.scaler.load_state_dict(state["grad_scaler"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{state_path}: key 'scheduler' / 'grad_scaler' cannot be loaded ({error!r})") from None
    progress = Progress(**{name: state.get(name, default) for name, default in vars(Progress()).items()})
    rank, saved_world = accelerator.process_index, state["world_size"]
    if rank < len(state["rng"]):
        try:
            restore_rng_state(state["rng"][rank])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as error:
            raise CheckpointError(f"{state_path}: key 'rng[{rank}]' is not an RNG state ({error!r})") from None
    else:
        seed_everything(config.seed + rank + 1_000_003 * progress.step)
    if saved_world != accelerator.num_processes:
        logger.info("checkpoint written by %d process(es), resuming on %d: epoch %d continues at step %d of the epoch",
                    saved_world, accelerator.num_processes, progress.epoch, progress.step_in_epoch)
    if progress.step_in_epoch and state["data_order"] != data_order:
        logger.warning("checkpoint %s was written with data order %s, this run has %s: epoch %d continues at step %d "
                       "in the new order (some images of the epoch may repeat or be skipped)", directory,
                       state["data_order"], data_order, progress.epoch, progress.step_in_epoch)
    return progress


def _described_data(data: object) -> str:
    """``data.root X`` or ``data.sources [name: root x weight, ...]`` of a config's data section (a dict)."""
    data = data if isinstance(data, dict) else {}
    sources = data.get("sources")
    if not sources or not isinstance(sources, list):
        return f"data.root {data.get('root')}"
    return "data.sources [" + ", ".join(f"{entry.get('name') or ''}: {entry.get('root')} x {entry.get('weight')}"
                                        for entry in sources if isinstance(entry, dict)) + "]"


def check_same_dataset(directory: Path, state: dict, config: TrainConfig, allow_data_change: bool) -> None:
    """Refuse to continue a checkpoint on other data than it was trained on (another dataset, or a mixture with a
    changed source, weight or name), unless allowed."""
    saved, now = state.get("dataset_fingerprint"), mixture_fingerprint(config.data_sources())
    if saved is None:
        logger.warning("%s records no dataset fingerprint (an older trainer wrote it): cannot check that %s is the "
                       "data it was trained on", directory, _described_data(config.to_dict()["data"]))
        return
    if saved == now:
        return
    message = (f"{directory} was trained on another dataset ({_described_data(state['train_config'].get('data'))}, "
               f"fingerprint {saved[:12]}) than {_described_data(config.to_dict()['data'])} (fingerprint {now[:12]})")
    if not allow_data_change:
        raise CheckpointError(f"{message}; pass --allow-data-change to continue on the new data")
    logger.warning("%s; continuing on the new data (--allow-data-change)", message)


def config_changes(saved: dict, current: dict) -> list[str]:
    """``key: old -> new`` for every config field that differs (dotted keys, sorted)."""
    before, after = flatten_scalars(saved), flatten_scalars(current)
    return [f"{key}: {before.get(key, '(unset)')!r} -> {after.get(key, '(unset)')!r}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
