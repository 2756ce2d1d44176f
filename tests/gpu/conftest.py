"""GPU tests (marker ``gpu``): deselected when CUDA is not available, and the terminal summary says so."""
import pytest
import torch

DESELECTED = pytest.StashKey[list]()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; deselected automatically (and reported) without one")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items:
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        config.hook.pytest_deselected(items=gpu_items)
        config.stash[DESELECTED] = gpu_items


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    deselected = config.stash.get(DESELECTED, [])
    if deselected:
        terminalreporter.write_sep("=", "GPU tests not run", yellow=True)
        terminalreporter.write_line(
            f"{len(deselected)} test(s) marked `gpu` were deselected: CUDA is not available here (torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda}). Run `python -m pytest tests/gpu` on a GPU machine.")
