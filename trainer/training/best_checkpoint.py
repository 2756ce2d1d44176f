"""Which validation ``output_dir/best`` keeps: the highest val CIDEr-D, and with ``eval.best_min_z`` only one that is
better than the run's start beyond the noise of the val split, alone or confirmed by the validations in a row above
the start.

Val CIDEr-D on a few hundred images moves by several percent between two checkpoints that caption equally well. A
self-critical stage from a weak cross-entropy model can score +6% on val at its first validation and -10% on test
(docs/results.md#which-scst-settings-transfer): its best/ would be worse than its start. And one that is better can
gain a few percent at each of ten validations while no single one is clear of the noise. So the run's first
validation (for a stage from ``train.init_from``: its starting weights) is the reference, and the paired z of a
validation is the mean of its per-image CIDEr-D minus the reference's, over the same images, in standard errors. The
validations in a row whose mean is above the reference's are a streak; pooled, each image's score is averaged over
the streak. A later validation becomes best when its corpus CIDEr-D beats the best so far and either its own paired z
or the streak's pooled z times the square root of the streak's length reaches ``best_min_z``.

The second is a persistence rule, not a calibrated test: the validations of one val split share its images, so their
noise is not independent (on the demo's 200-image splits the pooled z stays close to each one's). What it asks is
that a gain be confirmed: a spike followed by a validation at or below the start starts the streak over and is
judged alone, while a gain of paired z ``z`` at every validation is kept after ``(best_min_z / z) ** 2`` of them in
a row (four at z 1 for ``best_min_z: 2``). With ``best_min_z: 0`` any gain counts, as without the check.
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


def pooled_z(progress: Progress, per_image: dict[str, float]) -> float | None:
    """Add this validation to the streak (``progress.streak_cider``: per-image sums, ``streak_length``) and return
    the streak's pooled paired z against the reference; None when this validation becomes the reference (the run's
    first, or other val images than the reference's: a resume on other data)."""
    reference = progress.reference_cider
    if paired_z(reference or {}, per_image) is None:
        progress.reference_cider, progress.streak_cider, progress.streak_length = dict(per_image), None, 0
        return None
    if math.fsum(per_image.values()) <= math.fsum(reference.values()):  # at or below the start: the streak ends
        progress.streak_cider, progress.streak_length = None, 0
        return paired_z(reference, per_image)
    sums = progress.streak_cider or dict.fromkeys(per_image, 0.0)
    progress.streak_cider = {image_id: sums.get(image_id, 0.0) + score for image_id, score in per_image.items()}
    progress.streak_length += 1
    return paired_z(reference, {image_id: total / progress.streak_length
                                for image_id, total in progress.streak_cider.items()})


def keeps_as_best(progress: Progress, cider: float, per_image: dict[str, float], min_z: float) -> tuple[bool, str]:
    """Whether the validation at ``progress.step`` replaces best/ (True for the run's first), and with ``min_z`` a
    line saying why it moved or why it did not when only the evidence refused it. Updates the reference and the
    streak (``pooled_z``) at every validation."""
    above_best = progress.best_cider is None or cider > progress.best_cider
    if not min_z:
        return above_best, ""
    pooled = pooled_z(progress, per_image)
    if pooled is None or not above_best:
        return above_best, ""
    alone, count = paired_z(progress.reference_cider, per_image), progress.streak_length
    confirmed = pooled * math.sqrt(count) if count else -math.inf
    evidence = f"paired z {alone:.2f}"
    if count > 1:
        evidence += (f"; {count} validations in a row above the run's start, pooled z {pooled:.2f} x sqrt({count}) = "
                     f"{confirmed:.2f}")
    if max(alone, confirmed) >= min_z:
        return True, f"step {progress.step}: best/ moves here (val CIDEr-D {cider:.4f}; {evidence})"
    return False, (f"step {progress.step}: val CIDEr-D {cider:.4f} is above the best {progress.best_cider:.4f} but "
                   f"not {min_z:g} standard errors above the run's start ({evidence}); best/ stays at step "
                   f"{progress.best_step}")
