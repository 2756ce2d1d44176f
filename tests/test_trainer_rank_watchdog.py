"""RankWatchdog on a real TCPStore: a rank whose heartbeat stops is named; a finished or beating rank is not."""
import time

import torch.distributed as dist
from distributed_runs import free_port

from trainer.distributed.rank_watchdog import RankWatchdog


def store():
    return dist.TCPStore("127.0.0.1", free_port(), world_size=1, is_master=True, wait_for_workers=False)


def test_silent_rank_is_named_by_the_thread():
    kv, lost = store(), []
    watchdog = RankWatchdog(kv, rank=0, world_size=3, timeout_s=1.0, interval_s=0.1, on_lost=lost.append).start()
    deadline = time.monotonic() + 10
    while not lost and time.monotonic() < deadline:
        kv.add("beat/2", 1)  # rank 2 keeps beating; rank 1 never does
        time.sleep(0.05)
    watchdog.stop()
    assert lost and lost[0].startswith("error: lost rank 1: no heartbeat for 1 s (distributed.timeout_s=1)")


def test_diagnose_after_a_failed_collective():
    kv = store()
    watchdog = RankWatchdog(kv, rank=0, world_size=2, timeout_s=60, interval_s=0.1, on_lost=lambda m: None)
    kv.add("beat/1", 1)
    started = time.monotonic()
    message = watchdog.diagnose()
    assert message is not None and "lost rank 1" in message
    assert time.monotonic() - started < 5  # 3 beats of silence suffice, not the whole timeout


def test_beating_or_finished_ranks_are_not_lost():
    kv, lost = store(), []
    watchdog = RankWatchdog(kv, rank=0, world_size=2, timeout_s=0.5, interval_s=0.1, on_lost=lost.append).start()
    kv.add("done/1", 1)
    time.sleep(1.0)
    assert watchdog.diagnose(wait_s=0.5) is None and not lost
    watchdog.stop()
