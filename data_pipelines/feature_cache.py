"""What a feature cache (``python -m data_pipelines.features``) records, and the check that a run's cache was made
from its dataset, image size, weights and backbone."""
from __future__ import annotations

from pathlib import Path

from data_pipelines.data_root import DataRoot
from data_pipelines.manifest import dataset_fingerprint, read_manifest
from modeling.config import BACKBONE_STAGES
from modeling.encoder import backbone_fingerprint

FEATURE_CACHE_FORMAT = "showattend-feature-cache"
WHOLE_BACKBONE = BACKBONE_STAGES[-1]  # a cache without a "through" entry holds layer4's output


def weights_spec(weights: str) -> str:
    """Canonical weights spec: ``"none"``, ``"imagenet"`` or the absolute path of a weights file."""
    return weights if weights in ("none", "imagenet") else str(Path(weights).expanduser().resolve())


def cached_stage(cache: dict, path: str) -> str:
    """The last backbone stage a cache ran (its features are that stage's output)."""
    through = cache.get("through", WHOLE_BACKBONE)
    if through not in BACKBONE_STAGES:
        raise ValueError(f"{path}: key 'feature_cache.through' = {through!r:.40}, expected one of {BACKBONE_STAGES}")
    return through


def check_cached_stage_is_frozen(through: str, backbone, model_source: str, path: str) -> None:
    """A cache holds a frozen backbone's output: refuse it for a model that trains that stage or an earlier one."""
    trained = backbone.trainable_stages()
    if trained and BACKBONE_STAGES.index(through) >= BACKBONE_STAGES.index(trained[0]):
        earlier = BACKBONE_STAGES.index(trained[0]) - 1
        remedy = (f"build a cache through {BACKBONE_STAGES[earlier]} (python -m data_pipelines.features --through "
                  f"{BACKBONE_STAGES[earlier]}) or read images (data.features=null)") if earlier >= 0 else \
            "read images (data.features=null)"
        raise ValueError(f"{path}: feature cache of the frozen backbone through {through} cannot feed {model_source}, "
                         f"whose encoder is fine-tuned from {trained[0]}: {remedy}")


def check_feature_cache(features_root, weights: str | None, image_size: int, data_root, backbone=None,
                        model_source: str = "this model") -> dict:
    """Refuse a feature cache made from another dataset, image size, weights (skipped when None) or backbone: the
    frozen stages of ``modeling.encoder.Backbone`` ``backbone`` (skipped when None) of ``model_source`` (named in the
    error) must be the ones the cache ran, unchanged. Returns the cache's ``feature_cache`` manifest entry."""
    path = DataRoot(features_root).join("manifest.json")
    cache = read_manifest(features_root).get("feature_cache")
    if not isinstance(cache, dict):
        raise ValueError(f"{path}: not a feature cache (no 'feature_cache' entry); build one with "
                         f"python -m data_pipelines.features --data {data_root} --out {features_root}")
    through = cached_stage(cache, path)
    asked = {"source.dataset_fingerprint": dataset_fingerprint(data_root), "image_size": int(image_size)}
    source = cache.get("source") or {}
    found = {"source.dataset_fingerprint": source.get("dataset_fingerprint"), "image_size": cache.get("image_size")}
    if weights is not None:
        asked["weights"], found["weights"] = weights_spec(weights), cache.get("weights")
    if backbone is not None:
        check_cached_stage_is_frozen(through, backbone, model_source, path)
        asked["backbone_fingerprint"] = backbone_fingerprint(backbone, through)
        found["backbone_fingerprint"] = cache.get("backbone_fingerprint")
    if found["source.dataset_fingerprint"] != asked["source.dataset_fingerprint"]:
        found["source.dataset_fingerprint"] = f"{found['source.dataset_fingerprint']} (made from {source.get('path')})"
    differences = [f"{key}: cache has {found[key]!r}, asked for {asked[key]!r}" for key in asked if found[key] != asked[key]]
    if differences:
        raise ValueError(f"{path}: feature cache does not match {model_source} (dataset {data_root}): "
                         + "; ".join(differences)
                         + ". Rebuild it with python -m data_pipelines.features --overwrite")
    return cache
