"""Images that reach a prepared dataset twice: one image file (same bytes) under two ids, and one id listed in two
splits. Both are kept out of silence: the first is train/test leakage when the copies sit in different splits (a model
is scored on images it trained on), the second drops the later listing.

prepare writes both (there are real datasets with a few exact duplicates), lists them in stats.json and logs one
WARNING for each kind that crosses splits, naming the first few ids."""
from __future__ import annotations

EXAMPLES = 5  # ids named in a warning; stats.json has them all


class DuplicateImages:
    """Collects (image id, split) per sha256 of the source file's bytes, in the order prepare writes them."""

    def __init__(self) -> None:
        self._images: dict[str, list[tuple[str, str]]] = {}

    def add(self, sha256: str, image_id: str, split: str) -> None:
        self._images.setdefault(sha256, []).append((image_id, split))

    def groups(self) -> list[dict]:
        """One entry per file written more than once: its sha256, the (id, split) of each copy, whether the copies
        span splits."""
        return [{"sha256": digest, "images": [{"image_id": image_id, "split": split} for image_id, split in copies],
                 "across_splits": len({split for _, split in copies}) > 1}
                for digest, copies in self._images.items() if len(copies) > 1]

    def stats(self) -> dict:
        groups = self.groups()
        return {"num_files_written_twice": len(groups),
                "num_files_in_several_splits": sum(group["across_splits"] for group in groups), "files": groups}

    def warning(self) -> str | None:
        """The leakage warning (files whose copies span splits), or None."""
        leaking = [group for group in self.groups() if group["across_splits"]]
        if not leaking:
            return None
        examples = "; ".join(" = ".join(f"{image['image_id']!r} ({image['split']})" for image in group["images"])
                             for group in leaking[:EXAMPLES])
        return (f"{len(leaking)} image file(s) are written under several ids in different splits (the same bytes, "
                f"so a model is scored on images it trained on): {examples}"
                f"{' ...' if len(leaking) > EXAMPLES else ''}; all are listed under 'duplicate_images' in stats.json")


def split_conflict_warning(skipped: list[dict]) -> str | None:
    """A warning naming the ids listed in two splits (``clean_records`` keeps the first listing), or None."""
    conflicts = [entry for entry in skipped
                 if entry["reason"] == "duplicate image_id" and entry.get("first_split") not in (None, entry["split"])]
    if not conflicts:
        return None
    examples = ", ".join(f"{entry['image_id']!r} ({entry['first_split']}, dropped from {entry['split']})"
                         for entry in conflicts[:EXAMPLES])
    return (f"{len(conflicts)} image id(s) are listed in two splits; only the first listing is written: {examples}"
            f"{' ...' if len(conflicts) > EXAMPLES else ''} (see 'skipped' in stats.json)")
