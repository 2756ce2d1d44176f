"""The on-paper epoch estimate and the Markdown summary of a check's JSON."""
from __future__ import annotations

KARPATHY_TRAIN_IMAGES, CAPTIONS_PER_IMAGE = 113_287, 5
DDP_EFFICIENCY_8 = 0.9  # assumed for 8 GPUs in one node (NCCL all-reduce of ~9M fp32 gradients per step)
FEATURE_BYTES_PER_IMAGE = 2048 * 7 * 7 * 2  # one fp16 feature map of the cache


def epoch_estimate(train_rows: list[dict]) -> dict:
    """Minutes per epoch of COCO Karpathy train (113,287 images x 5 captions) on cached features, from the fastest
    measured training row, on 1 GPU and on 8 with ``DDP_EFFICIENCY_8``; and the feature bandwidth that needs."""
    measured = [row for row in train_rows if row.get("captions_per_s")]
    if not measured:
        return {"error": "no training row was measured"}
    best = max(measured, key=lambda row: row["captions_per_s"])
    captions = KARPATHY_TRAIN_IMAGES * CAPTIONS_PER_IMAGE
    one_gpu_s = captions / best["captions_per_s"]
    eight_gpu_s = one_gpu_s / (8 * DDP_EFFICIENCY_8)
    return {"images": KARPATHY_TRAIN_IMAGES, "captions": captions,
            "from_row": {key: best[key] for key in ("dtype", "mode", "micro_batch_images", "captions_per_s")},
            "minutes_1_gpu": round(one_gpu_s / 60, 2), "ddp_efficiency_8_gpus": DDP_EFFICIENCY_8,
            "minutes_8_gpus": round(eight_gpu_s / 60, 3),
            "feature_gb_per_epoch": round(KARPATHY_TRAIN_IMAGES * FEATURE_BYTES_PER_IMAGE / 1e9, 1),
            "feature_mb_per_s_needed_1_gpu": round(KARPATHY_TRAIN_IMAGES * FEATURE_BYTES_PER_IMAGE / one_gpu_s / 1e6, 1)}


def _cell(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "" if value is None else str(value)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    """Markdown table of ``columns``; a last "note" column says why a row was skipped or failed."""
    lines = ["| " + " | ".join(columns + ["note"]) + " |", "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        note = row.get("skipped") or row.get("error") or ""
        lines.append("| " + " | ".join([_cell(row.get(column)) for column in columns] + [note]) + " |")
    return lines


def markdown(result: dict) -> str:
    device = result.get("device", {})
    lines = [f"# GPU check{' (smoke, CPU toy sizes)' if result.get('smoke') else ''}", "",
             f"{device.get('name')} ({device.get('type')}), driver {device.get('driver')}, torch {device.get('torch')}, "
             f"CUDA {device.get('cuda')}; peaks {device.get('peak_tflops')} TFLOP/s ({device.get('peak_source')}); "
             f"wall {result.get('wall_s')} s", ""]
    tests = result.get("tests", {})
    lines += ["## pytest tests/gpu", "", f"passed {tests.get('passed')}, failed {tests.get('failed')}, errors "
              f"{tests.get('error')}, skipped {tests.get('skipped')}, deselected {tests.get('deselected')}"
              + (f"; {tests['error_message']}" if tests.get("error_message") else ""), ""]
    lines += [f"- {name}: {case['outcome']}" for name, case in tests.get("cases", {}).items()] + [""]
    lines += ["## Decoder training (cached features)", ""] + _table(result.get("train", []), [
        "dtype", "mode", "micro_batch_images", "captions_per_s", "mfu", "model_tflops_per_s", "peak_memory_mib",
        "warmup_s", "step_ms"]) + [""]
    lines += ["## Beam search", ""] + _table(result.get("beam", []), [
        "dtype", "beam_size", "images", "images_per_s", "peak_memory_mib", "mean_tokens"]) + [""]
    lines += ["## Feature extraction (JPEG shards -> ResNet-50)", ""] + _table(result.get("features", []), [
        "dtype", "channels_last", "image_size", "loader_workers", "images_per_s", "backbone_images_per_s",
        "loader_share"]) + [""]
    xe = result.get("xe_scst", {})
    lines += [f"## XE + SCST on the {xe.get('preset', 'shapes')} preset", ""]
    for stage, values in xe.get("stages", {}).items():
        per_source = "".join(f"; {name} {scores.get('test_cider')}" for name, scores in values.get("sources", {}).items())
        lines.append(f"- {stage}: test CIDEr-D {values.get('test_cider')}{per_source} (CPU figure "
                     f"{xe.get('cpu_test_cider', {}).get(stage)}), training {values.get('train_s')} s")
    if xe.get("error"):
        lines.append(f"- error: {xe['error']}")
    estimate = result.get("epoch_estimate", {})
    lines += ["", "## COCO Karpathy train epoch on cached features (on paper)", "",
              f"{estimate.get('captions')} captions at {estimate.get('from_row', {}).get('captions_per_s')} captions/s "
              f"({estimate.get('from_row')}): {estimate.get('minutes_1_gpu')} min on 1 GPU, "
              f"{estimate.get('minutes_8_gpus')} min on 8 at DDP efficiency {estimate.get('ddp_efficiency_8_gpus')}; "
              f"{estimate.get('feature_gb_per_epoch')} GB of fp16 features per epoch, "
              f"{estimate.get('feature_mb_per_s_needed_1_gpu')} MB/s to keep 1 GPU fed", ""]
    lines += ["## Sections", ""] + [f"- {name}: {values}" for name, values in result.get("sections", {}).items()]
    return "\n".join(lines) + "\n"
