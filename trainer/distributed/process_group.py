"""Start-up check that every launched process joined one Accelerate group.

On a machine without CUDA, `accelerate launch --multi_gpu` starts processes that do not synchronise unless they build
`Accelerator(cpu=True)`; each then trains alone. Comparing the group size with WORLD_SIZE catches that.
"""
from __future__ import annotations

import os
import sys


def check_process_group(accelerator) -> None:
    """Exit with a clear message when ``WORLD_SIZE`` processes were launched but formed a group of another size."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        sys.exit(f"error: WORLD_SIZE={launched} processes were launched but Accelerate formed a group of "
                 f"{accelerator.num_processes} ({accelerator.distributed_type}); on CPU launch with "
                 f"`accelerate launch --config_file launch/cpu_2proc.yaml` (or --multi_gpu with ACCELERATE_USE_CPU=1)")
