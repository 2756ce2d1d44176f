"""Which validation ``output_dir/best`` keeps: the highest val CIDEr-D, and with ``eval.best_min_z`` only one that is
better than the run's start beyond the noise of the val split.

Val CIDEr-D on a few hundred images moves by several percent between two checkpoints that caption equally well. A
self-critical stage from a weak cross-entropy model can score +6% on val at its first validation and -10% on test
(docs/results.md#which-scst-settings-transfer): its best/ would be worse than its start. So the run's first validation
(for a stage from ``train.init_from``: its starting weights) is the reference, and a later validation becomes best
only when the mean of its per-image CIDEr-D minus the reference's, over the same images, is at least ``best_min_z``
standard errors of that difference above zero (a paired test) - and its corpus CIDEr-D beats the best so far. With
``best_min_z: 0`` that is any gain, as without the check.
"""
from __future__ import annotations

import math

from trainer.checkpointing.train_state import Progress


def paired_z(reference: dict[str, float], scores: dict[str, float]) -> float | None:
    """Mean per-image difference ``scores - reference`` in standard errors (inf when every difference is the same
    positive number); None when the two do not score the same images or fewer than two."""
    if set(reference) != set(scores) or len(scores) < 2:
        return None
    differences = [scores[image_id] - reference[image_id] for image_id in reference]
    mean = math.fsum(differences) / len(differences)
    variance = math.fsum((value - mean) ** 2 for value in differences) / (len(differences) - 1)
    if variance == 0:
        return math.inf if mean > 0 else (-math.inf if mean < 0 else 0.0)
    return mean / math.sqrt(variance / len(differences))


def keeps_as_best(progress: Progress, cider: float, per_image: dict[str, float], min_z: float) -> tuple[bool, str]:
    """Whether the validation at ``progress.step`` replaces best/ (True for the run's first), and a line saying why
    not when only the paired check refused it. Sets ``progress.reference_cider`` at the first validation, or anew
    when the val images changed (a resume on other data)."""
    if progress.best_cider is not None and cider <= progress.best_cider:
        return False, ""
    if not min_z:
        return True, ""
    z = paired_z(progress.reference_cider or {}, per_image)
    if z is None:  # the first validation, or another val split: it is the reference from now on
        progress.reference_cider = dict(per_image)
        return True, ""
    if z >= min_z:
        return True, ""
    return False, (f"step {progress.step}: val CIDEr-D {cider:.4f} is above the best {progress.best_cider:.4f} but not "
                   f"{min_z:g} standard errors above the run's start (paired z {z:.2f}); best/ stays at step "
                   f"{progress.best_step}")
