"""How a global batch is split over processes and gradient-accumulation micro-steps (litgpt's global_batch_size /
micro_batch_size model).

The data of one optimizer step is ``lanes`` micro-batches of ``micro_batch_size`` images. Lanes are the unit of the
data order (``data_pipelines.train_stream``): process ``r`` of ``W`` trains lanes ``r*A .. r*A+A-1``, one per
accumulation micro-step (``A = lanes / W``). ``train.micro_batch_size`` caps the micro-batch: while
``global_batch_size / W`` is at least the cap, the micro-batch is the cap and ``lanes`` does not depend on ``W``, so
1, 2, 4 or 8 processes see the same images in every step (with more processes each takes a smaller share).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    global_batch_size: int  # images per optimizer step, over all processes
    micro_batch_size: int  # images per forward/backward of one process
    accumulation: int  # micro-steps per optimizer step on each process
    world_size: int

    @property
    def lanes(self) -> int:
        """Micro-batches per optimizer step over all processes."""
        return self.accumulation * self.world_size

    def lanes_of(self, rank: int) -> range:
        return range(rank * self.accumulation, (rank + 1) * self.accumulation)

    def describe(self) -> str:
        return (f"global batch {self.global_batch_size} = {self.world_size} process(es) x micro-batch "
                f"{self.micro_batch_size} x accumulation {self.accumulation}")


def plan_batches(world_size: int, global_batch_size: int, micro_batch_size: int = 0) -> BatchPlan:
    """The plan for ``world_size`` processes: micro-batch ``min(micro_batch_size, global_batch_size / world_size)``
    (no cap when ``micro_batch_size`` is 0) and the accumulation that makes up the global batch; an error when it does
    not divide."""
    if world_size < 1:
        raise ValueError(f"world size must be >= 1, got {world_size}")
    if global_batch_size < 1:
        raise ValueError(f"train.global_batch_size must be >= 1, got {global_batch_size}")
    if global_batch_size % world_size:
        raise ValueError(f"train.global_batch_size={global_batch_size} is not divisible by the {world_size} "
                         f"process(es)")
    per_process = global_batch_size // world_size
    micro = min(micro_batch_size or per_process, per_process)
    if per_process % micro:
        raise ValueError(f"train.global_batch_size={global_batch_size} / {world_size} process(es) = {per_process} "
                         f"images per process is not a multiple of train.micro_batch_size={micro}")
    return BatchPlan(global_batch_size, micro, per_process // micro, world_size)


def plan_for(train, world_size: int) -> BatchPlan:
    """The plan of a config's ``train`` section (``trainer.config.sections.TrainSection``) for ``world_size``
    processes."""
    return plan_batches(world_size, train.global_batch_size, train.micro_batch_size)
