"""Feature cache: run the frozen ResNet-50 once over a prepared dataset and store its feature maps.

    python -m data_pipelines.features --data OUT --out FEATS --weights none|imagenet|PATH [--image-size 224]
                                      [--through layer4|layer3|layer2|layer1]

FEATS gets shards with the same names and keys as OUT, each sample holding ``KEY.json`` (copied) and
``KEY.safetensors`` (one fp16 tensor "features": the output of stage ``--through``, by default layer4's (2048, h, w);
layer3's (1024, 2h, 2w) feeds a run that fine-tunes layer4), plus ``manifest.json`` with the usual ``splits`` and a
``feature_cache`` entry (weights, the stage, the fingerprint of the backbone through it, image size, source dataset,
its manifest hash and fingerprint) that ``check_feature_cache`` compares against what a run asks for.
Written into a temporary directory and renamed into place, so FEATS is either complete or absent.
"""
from __future__ import annotations

import argparse
import io
import json
import tarfile
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save as save_safetensors
from tqdm import tqdm

from data_pipelines.atomic_dir import atomic_dir
from data_pipelines.data_root import DataRoot
from data_pipelines.feature_cache import FEATURE_CACHE_FORMAT, WHOLE_BACKBONE, weights_spec
from data_pipelines.image_files import SHARD_FORMATS
from data_pipelines.manifest import dataset_fingerprint, manifest_sha256, read_manifest
from data_pipelines.output_paths import check_output_apart_from_inputs, check_replaceable
from data_pipelines.stream_samples import FEATURE_TENSOR_NAME, BrokenSampleCounter, batched, read_tar_samples
from data_pipelines.transforms import eval_transform
from modeling.config import BACKBONE_STAGES
from modeling.encoder import backbone_fingerprint, build_backbone


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(payload), 0o644, 0
    tar.addfile(info, io.BytesIO(payload))


def _encode_shard(source: str, target: Path, backbone, through: str, transform, batch_size: int,
                  skipped: BrokenSampleCounter, progress: tqdm) -> dict:
    """Write the feature shard of one source shard; returns its image and caption counts and the feature shape."""
    counts = {"images": 0, "captions": 0, "feature_shape": None}
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for raw_batch in batched(read_tar_samples([source], skipped), batch_size, keep_partial=True):
            decoded = []
            for raw in raw_batch:
                try:
                    with Image.open(io.BytesIO(raw["jpg"]), formats=SHARD_FORMATS) as image:
                        pixels = transform(image.convert("RGB"))
                    decoded.append((raw["__key__"], raw["json"], len(json.loads(raw["json"])["captions"]), pixels))
                except Exception as error:  # noqa: BLE001 - a broken sample is skipped like the stream skips it
                    skipped(ValueError(f"{source}: sample {raw.get('__key__')!r}: {error!r}"))
            progress.update(len(raw_batch))
            if not decoded:
                continue
            pixels = torch.stack([pixels for *_, pixels in decoded])
            device = next(backbone.parameters()).device
            if device.type == "cuda":  # pinned host memory lets the copy overlap the previous batch's kernels
                pixels = pixels.pin_memory()
            with torch.inference_mode():
                features = backbone(pixels.to(device, non_blocking=True), through=through).to(torch.float16).cpu()
            for (key, meta, num_captions, _), feature in zip(decoded, features):
                _add_member(tar, f"{key}.json", meta)
                _add_member(tar, f"{key}.safetensors", save_safetensors({FEATURE_TENSOR_NAME: feature.clone()}))
                counts["images"] += 1
                counts["captions"] += num_captions
            counts["feature_shape"] = list(features.shape[1:])
    return counts


def extract_features(data_root, out, weights: str, image_size: int = 224, batch_size: int = 32,
                     splits: list[str] | None = None, overwrite: bool = False, show_progress: bool = True,
                     device: str | None = None, through: str = WHOLE_BACKBONE) -> dict:
    """Build the feature cache ``out`` from the prepared dataset ``data_root``: the output of the backbone's stage
    ``through``, computed on ``device`` (default: the first GPU if there is one, else the CPU); returns its manifest."""
    if through not in BACKBONE_STAGES:
        raise ValueError(f"--through {through!r}: expected one of {BACKBONE_STAGES}")
    data_root, out = DataRoot(data_root), Path(out)
    check_output_apart_from_inputs(out, {"--data": [] if data_root.remote else [data_root.location],
                                         "--weights": [] if weights in ("none", "imagenet") else [weights]})
    source_manifest = read_manifest(data_root)
    splits = list(source_manifest["splits"]) if splits is None else splits
    unknown = [split for split in splits if split not in source_manifest["splits"]]
    if unknown:
        raise ValueError(f"{data_root.join('manifest.json')}: no split(s) {unknown} (has {sorted(source_manifest['splits'])})")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    check_replaceable(out, FEATURE_CACHE_FORMAT, "feature cache")
    backbone = build_backbone(weights)
    fingerprint = backbone_fingerprint(backbone, through)
    backbone.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    transform = eval_transform(image_size)
    skipped = BrokenSampleCounter()
    with atomic_dir(out) as staging:
        manifest_splits, feature_shape = {}, None
        for split in splits:
            entry = source_manifest["splits"][split]
            totals = {"shards": [], "images": 0, "captions": 0, "shard_sizes": {}}
            with tqdm(total=entry["images"], desc=f"features {split}", unit="img", disable=not show_progress) as bar:
                for name in entry["shards"]:
                    counts = _encode_shard(data_root.join(name), staging / name, backbone, through, transform, batch_size,
                                           skipped, bar)
                    if counts["images"] == 0:
                        (staging / name).unlink()
                        continue
                    totals["shards"].append(name)
                    totals["shard_sizes"][name] = counts["images"]
                    totals["images"] += counts["images"]
                    totals["captions"] += counts["captions"]
                    feature_shape = counts["feature_shape"]
            manifest_splits[split] = totals
        manifest = {"format": FEATURE_CACHE_FORMAT, "version": 1, "splits": manifest_splits, "feature_cache": {
            "weights": weights_spec(weights), "through": through, "backbone_fingerprint": fingerprint,
            "image_size": image_size, "feature_shape": feature_shape, "dtype": "float16",
            "skipped_samples": skipped.count,
            "source": {"path": data_root.location if data_root.remote else str(Path(data_root.location).resolve()),
                       "manifest_sha256": manifest_sha256(data_root),
                       "dataset_fingerprint": dataset_fingerprint(data_root)}}}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepared dataset: directory or URL (data_pipelines.prepare)")
    parser.add_argument("--out", required=True, type=Path, help="feature cache directory to create")
    parser.add_argument("--weights", default="imagenet", help="backbone weights: none | imagenet | PATH (.safetensors/.pth)")
    parser.add_argument("--image-size", type=int, default=224, help="resize shorter side + center crop (default 224)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per backbone forward (default 32)")
    parser.add_argument("--splits", nargs="+", default=None, help="splits to encode (default: all in the manifest)")
    parser.add_argument("--through", default=WHOLE_BACKBONE, choices=BACKBONE_STAGES,
                        help="the last backbone stage run: its output is cached (default layer4, the whole backbone; "
                        "layer3 for a run with model.finetune_from=layer4)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--device", default=None, help="cuda | cpu | cuda:N (default: cuda when available)")
    args = parser.parse_args(argv)
    try:
        manifest = extract_features(args.data, args.out, args.weights, args.image_size, args.batch_size, args.splits,
                                    args.overwrite, device=args.device, through=args.through)
    except (OSError, ValueError, RuntimeError) as error:
        parser.exit(2, f"error: {error}\n")
    counts = ", ".join(f"{split}: {entry['images']} images" for split, entry in manifest["splits"].items())
    print(f"wrote {args.out} ({counts}; feature map {manifest['feature_cache']['feature_shape']})")


if __name__ == "__main__":
    main()
