"""Start-up check that every launched process joined one Accelerate group (shared/DESIGN.md item 1)."""
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
