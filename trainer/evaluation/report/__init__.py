"""A static HTML report of an evaluation, opened in any browser without a server:

- the summary table (our metrics beside the blind and human rows of ``trainer.baselines``),
- learning curves from the run's ``train_log.jsonl`` (matplotlib),
- a gallery of the evaluated images: caption, references, per-image scores, attention per word; sorted worst or
  best first, filtered by words, shown a page at a time so thousands of images stay fast.

    python -m trainer.evaluate_checkpoint --checkpoint CKPT --data OUT --split test --report DIR   # writes DIR/index.html
"""
from trainer.evaluation.report.gallery import CaptionedImage
from trainer.evaluation.report.writer import split_baselines, write_evaluation_report, write_report

__all__ = ["CaptionedImage", "split_baselines", "write_evaluation_report", "write_report"]
