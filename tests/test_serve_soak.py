"""A soak of the caption service: 32 clients for two minutes against a real ``trainer.serve`` process on 127.0.0.1,
one request in eight a non-image (its error path), then the server's memory is flat: RSS at the end within 10% of
its RSS after a warm-up, and every request answered as it should be."""
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from serve_process import serving

CLIENTS, WARM_UP_S, SOAK_S = 32, 20.0, 120.0


@pytest.mark.slow
def test_memory_stays_flat_at_full_concurrency(tiny_checkpoint):
    image = sorted(tiny_checkpoint[2].glob("*.jpg"))[0].read_bytes()
    with serving(tiny_checkpoint[0], "--max-batch", str(CLIENTS), "--max-queue", str(2 * CLIENTS)) as server:
        process = psutil.Process(server.process.pid)
        started = time.monotonic()
        warm_rss: list[int] = []

        def client(index: int) -> list[int]:
            statuses, sent = [], 0
            while time.monotonic() - started < WARM_UP_S + SOAK_S:
                bad = (index + sent) % 8 == 0
                status, answer, _ = server.caption(b"no image" if bad else image, "image/jpeg", max_len=12)
                statuses.append(status if not bad else (200 if status == 415 else status))
                sent += 1
                if not warm_rss and time.monotonic() - started > WARM_UP_S:
                    warm_rss.append(process.memory_info().rss)
            return statuses

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [status for result in pool.map(client, range(CLIENTS)) for status in result]
        final_rss = process.memory_info().rss
    assert set(statuses) == {200}, {status: statuses.count(status) for status in set(statuses)}
    assert len(statuses) > CLIENTS * 4
    assert final_rss <= 1.10 * warm_rss[0], f"RSS {warm_rss[0] / 2**20:.0f} MiB after warm-up, {final_rss / 2**20:.0f} MiB at the end"
