"""Where a run's numbers go: TensorBoard (through Accelerate) and ``output_dir/train_log.jsonl``."""
from __future__ import annotations

import json
import time
from pathlib import Path

from accelerate import Accelerator

from data_pipelines.safe_write import open_output

LOG_FILE = "train_log.jsonl"
IMAGE_IDS_FILE = "image_ids.jsonl"



class RunLog:
    """Scalars to TensorBoard and, on the main process, one JSON line per call to ``output_dir/train_log.jsonl``."""

    def __init__(self, accelerator: Accelerator, output_dir: Path):
        self.accelerator = accelerator
        self.path = Path(output_dir) / LOG_FILE
        self.image_ids_path = Path(output_dir) / IMAGE_IDS_FILE

    def scalars(self, values: dict, step: int) -> None:
        self.accelerator.log(values, step=step)
        if self.accelerator.is_main_process:
            with open_output(self.path) as handle:
                handle.write(json.dumps({"step": step, "wall_time": time.time(), **values}) + "\n")

    def image_ids(self, step: int, epoch: int, image_ids: list[str]) -> None:
        """The images of one optimizer step's global batch, in lane order (main process; ``logging.image_ids``)."""
        with open_output(self.image_ids_path) as handle:
            handle.write(json.dumps({"step": step, "epoch": epoch, "image_ids": image_ids}) + "\n")

    def validation(self, result, step: int) -> None:
        """``val/*`` scalars, the sample captions (text) and attention overlays (image) of one validation."""
        per_source = {f"val/{source}/{name}": value for source, metrics in result.source_metrics.items()
                      for name, value in metrics.items()}
        self.scalars({**{f"val/{name}": value for name, value in result.metrics.items()}, **per_source}, step)
        if self.accelerator.is_main_process:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
            writer.add_text("val/samples", result.samples_markdown, step)
            if result.attention_image is not None:
                writer.add_image("val/attention", result.attention_image, step)
            writer.flush()
