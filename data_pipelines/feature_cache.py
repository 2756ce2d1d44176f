"""What a feature cache (``python -m data_pipelines.features``) records, and the check that a run's cache was made
from its dataset, image size, weights and backbone."""
from __future__ import annotations

from pathlib import Path

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import dataset_fingerprint, read_manifest

FEATURE_CACHE_FORMAT = "showattend-feature-cache"


def weights_spec(weights: str) -> str:
    """Canonical weights spec: ``"none"``, ``"imagenet"`` or the absolute path of a weights file."""
    return weights if weights in ("none", "imagenet") else str(Path(weights).expanduser().resolve())


def check_feature_cache(features_root, weights: str | None, image_size: int, data_root,
                        backbone_fingerprint: str | None = None) -> dict:
    """Refuse a feature cache made from another dataset, image size, weights (skipped when None) or backbone
    (``backbone_fingerprint``, skipped when None); returns the cache's ``feature_cache`` manifest entry."""
    path = DataRoot(features_root).join("manifest.json")
    cache = read_manifest(features_root).get("feature_cache")
    if not isinstance(cache, dict):
        raise ValueError(f"{path}: not a feature cache (no 'feature_cache' entry); build one with "
                         f"python -m data_pipelines.features --data {data_root} --out {features_root}")
    asked = {"source.dataset_fingerprint": dataset_fingerprint(data_root), "image_size": int(image_size)}
    source = cache.get("source") or {}
    found = {"source.dataset_fingerprint": source.get("dataset_fingerprint"), "image_size": cache.get("image_size")}
    if weights is not None:
        asked["weights"], found["weights"] = weights_spec(weights), cache.get("weights")
    if backbone_fingerprint is not None:
        asked["backbone_fingerprint"], found["backbone_fingerprint"] = backbone_fingerprint, cache.get("backbone_fingerprint")
    if found["source.dataset_fingerprint"] != asked["source.dataset_fingerprint"]:
        found["source.dataset_fingerprint"] = f"{found['source.dataset_fingerprint']} (made from {source.get('path')})"
    differences = [f"{key}: cache has {found[key]!r}, asked for {asked[key]!r}" for key in asked if found[key] != asked[key]]
    if differences:
        raise ValueError(f"{path}: feature cache does not match (dataset {data_root}): " + "; ".join(differences)
                         + ". Rebuild it with python -m data_pipelines.features --overwrite")
    return cache
