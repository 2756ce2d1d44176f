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
import logging
import sys
from pathlib import Path

import torch.distributed as dist
from accelerate import Accelerator

from data_pipelines.redact import redact_logs
from trainer.checkpointing.run_dir import RESUME_CHOICES, check_output_dir_name
from trainer.config.help import config_help
from trainer.config.schema import TrainConfig, flatten_scalars, load_config
from trainer.distributed.rank_watchdog import RankWatchdog
from trainer.distributed.run_control import StopRequest
from trainer.training.loop import TrainingLoop
from trainer.training.run_log import RunLog
from trainer.training.run_setup import build_accelerator, build_loop, set_up_run
from trainer.training.trackers import start_trackers
from trainer.user_errors import exit_on_user_error

logger = logging.getLogger("trainer.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=config_help(),
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


def start_watchdog(config: TrainConfig, accelerator: Accelerator) -> RankWatchdog | None:
    """Heartbeats through the process group's store (several processes only)."""
    if accelerator.num_processes == 1:
        return None
    store = dist.distributed_c10d._get_default_store()  # the rendezvous store every rank already shares
    return RankWatchdog(store, accelerator.process_index, accelerator.num_processes,
                        config.distributed.timeout_s).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with exit_on_user_error():
        config = load_config(args.config, args.overrides)
        check_output_dir_name(config.output_dir)
    with exit_on_user_error():
        accelerator = build_accelerator(config)
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format=f"[rank {accelerator.process_index}] %(levelname)s %(name)s: %(message)s")
    redact_logs()
    if accelerator.device.type == "cpu" and config.mixed_precision != "no":
        logger.warning("mixed_precision=%s on a CPU: bf16/fp16 autocast is far slower than fp32 here",
                       config.mixed_precision)
    logger.info("world size %d (%s), device %s", accelerator.num_processes, accelerator.distributed_type,
                accelerator.device)
    watchdog = start_watchdog(config, accelerator)
    with exit_on_user_error():
        run = set_up_run(config, accelerator, args.resume, args.overwrite, args.allow_data_change)
    with exit_on_user_error():
        start_trackers(accelerator, config.logging.trackers, flatten_scalars(config.to_record()))
    stop = StopRequest()
    with exit_on_user_error():
        loop = build_loop(run, RunLog(accelerator, Path(config.output_dir)), stop)
        if config.train.init_from and run.progress.step == 0:
            loop.validate()  # the starting weights' score: the stage's best checkpoint is never worse than its start
        run_watched(loop, watchdog)
    accelerator.end_training()
    run.release()
    return stop.exit_code


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


if __name__ == "__main__":
    sys.exit(main())
