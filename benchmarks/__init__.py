"""Speed and memory benchmarks; run them as modules: `python -m benchmarks.bench_x` (see benchmarks/README.md)."""
