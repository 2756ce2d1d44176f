"""The service's Prometheus metrics, written in the text exposition format (version 0.0.4) without a client library:
requests by status, request latency, decoded batch sizes, queue depth."""
from __future__ import annotations

import bisect
from collections import Counter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    """Cumulative-bucket histogram of observed values."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets, self.counts, self.total, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        lines, cumulative = [], 0
        for bound, count in zip(self.buckets, self.counts):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
        return lines + [f'{name}_bucket{{le="+Inf"}} {self.count}', f"{name}_sum {self.total:.6f}",
                        f"{name}_count {self.count}"]


class ServeMetrics:
    """What ``GET /metrics`` reports; updated by the request handler and the batcher (one event loop: no locks)."""

    def __init__(self):
        self.requests: Counter[int] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS_S)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.queue_depth = 0
        self.ready = False

    def request_done(self, status: int, seconds: float) -> None:
        self.requests[status] += 1
        self.latency.observe(seconds)

    def render(self) -> str:
        lines = ["# HELP showattend_requests_total Caption requests answered, by HTTP status.",
                 "# TYPE showattend_requests_total counter"]
        lines += [f'showattend_requests_total{{status="{status}"}} {count}' for status, count in sorted(self.requests.items())]
        lines += ["# HELP showattend_request_seconds Time from a caption request's arrival to its answer.",
                  "# TYPE showattend_request_seconds histogram", *self.latency.lines("showattend_request_seconds"),
                  "# HELP showattend_batch_size Images decoded together in one batched search.",
                  "# TYPE showattend_batch_size histogram", *self.batch_size.lines("showattend_batch_size"),
                  "# HELP showattend_queue_depth Requests waiting for the model.",
                  "# TYPE showattend_queue_depth gauge", f"showattend_queue_depth {self.queue_depth}",
                  "# HELP showattend_model_ready 1 once the model is loaded.",
                  "# TYPE showattend_model_ready gauge", f"showattend_model_ready {int(self.ready)}"]
        return "\n".join(lines) + "\n"
