"""README.md model cards for checkpoint folders meant to be shared (``best/``, ``trainer.export`` output): the model's
config, the data it was trained on (dataset fingerprint, split sizes), its last validation metrics and how to load it.
The card ends with its facts as one JSON block, so a card can be read back (``read_card_data``) and re-rendered."""
from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

from data_pipelines.data_sources import default_source_name
from data_pipelines.manifest import dataset_fingerprint, read_manifest
from data_pipelines.redact import redacted
from data_pipelines.safe_write import write_file
from modeling.encoder import encoder_description

CARD_FILE = "README.md"
_DATA_BLOCK = re.compile(r"## Card data\n\n```json\n(.*?)\n```", re.DOTALL)

LOAD_CHECKPOINT = """```python
from trainer.inference.pipeline import CaptionPipeline
pipe = CaptionPipeline.from_checkpoint("{folder}", device="cpu")  # or "cuda", dtype="bfloat16"
print(pipe(["photo.jpg"], beam_size=3)[0].captions[0].text)
```
```bash
python -m trainer.caption --checkpoint {folder} photo.jpg --json
python -m trainer.export --checkpoint {folder} --out {folder}_onnx   # onnxruntime graphs, numpy search
```"""
LOAD_EXPORT = """```python
from trainer.inference.onnx_search import OnnxCaptioner   # needs onnxruntime and numpy only
captioner = OnnxCaptioner("{folder}")
tokens, score = captioner.caption(pixels, beam_size=3)[0]   # pixels: (B, 3, S, S) ImageNet-normalised
print(captioner.decode(tokens))
```
`encoder.onnx`: pixels -> region features (+ attention projection, initial LSTM state); `decoder_step.onnx`: one
decoding step. Preprocess as training did: EXIF-upright RGB, resize the shorter side to S, centre crop S x S, ImageNet
mean/std (S = `image_size` in `export.json`)."""


def data_facts(data_root: str | None) -> dict:
    """Fingerprint and split sizes of a prepared dataset; only the root when it cannot be read any more."""
    if not data_root:
        return {}
    try:
        manifest = read_manifest(data_root)
        return {"root": str(data_root), "fingerprint": dataset_fingerprint(data_root),
                "splits": {name: {"images": entry["images"], "captions": entry.get("captions")}
                           for name, entry in sorted(manifest["splits"].items())}}
    except (OSError, ValueError) as error:
        return {"root": str(data_root), "unavailable": str(error)}


def train_config_of(checkpoint: Path) -> dict | None:
    """The train config recorded in ``CKPT/trainer_state.json`` (None without one)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = state.get("train_config") if isinstance(state, dict) else None
    return config if isinstance(config, dict) else None


def card_facts(directory: Path, train_config: dict | None, metrics: dict | None, step: int | None,
               split: str | None) -> dict:
    """Everything a card states, from the folder's config.json/vocab.json and the run that wrote it."""
    model = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    data = (train_config or {}).get("data")
    data = data if isinstance(data, dict) else {}
    sources = [source for source in data.get("sources") or [] if isinstance(source, dict)]
    facts = ({"sources": [{"name": source.get("name") or default_source_name(source.get("root") or ""),
                           "weight": source.get("weight"), **data_facts(source.get("root"))} for source in sources]}
             if sources else data_facts(data.get("root")))
    return redacted({"model": model, "image_size": data.get("image_size"), "data": facts,
                     "validation": {"split": split, "step": step, "metrics": metrics or {}},
                     "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})


def render_card(facts: dict, how_to_load: str) -> str:
    model, data, validation = facts["model"], facts["data"], facts["validation"]
    encoder = encoder_description(model.get("finetune_from", "none"))
    lines = ["# showattend image-captioning model", "",
             f"Show, Attend and Tell: {encoder}, 1x1 conv to region features, additive attention, LSTMCell "
             "decoder.", "", "## Model", "", "| field | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in model.items()]
    lines += ["", f"Input images: {facts.get('image_size') or 'see trainer_state.json'} px.", "", "## Training data", ""]
    if data.get("sources"):
        lines += ["A weighted mixture of prepared datasets (sampling rate: weight / sum of the weights).", ""]
        for source in data["sources"]:
            lines += [f"### {source.get('name')} (weight {source.get('weight')})", "", *_dataset_lines(source), ""]
    else:
        lines += _dataset_lines(data)
    lines += ["", "## Last validation", ""]
    if validation.get("metrics"):
        lines += [f"Split `{validation['split']}` at step {validation['step']}.", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in validation["metrics"].items()]
    else:
        lines.append("Not recorded.")
    lines += ["", "## How to load", "", how_to_load, "", "## Card data", "", "```json", json.dumps(facts), "```", ""]
    return "\n".join(lines)


def _dataset_lines(data: dict) -> list[str]:
    if not data.get("splits"):
        return [f"Not recorded ({data.get('unavailable', 'no data root in the train config')})."]
    lines = [f"Prepared dataset `{data['root']}`, fingerprint `{data['fingerprint']}`.", "",
             "| split | images | captions |", "|---|---|---|"]
    return lines + [f"| {name} | {sizes['images']} | {sizes['captions']} |" for name, sizes in data["splits"].items()]


def read_card_data(directory: Path) -> dict | None:
    """The facts of ``directory/README.md`` written by this module, or None."""
    path = Path(directory) / CARD_FILE
    match = _DATA_BLOCK.search(path.read_text(encoding="utf-8")) if path.is_file() else None
    return json.loads(match.group(1)) if match else None


def write_model_card(directory: str | Path, train_config, metrics: dict | None = None, step: int | None = None) -> Path:
    """``directory/README.md`` for a checkpoint written by a run with ``train_config`` (a TrainConfig or its dict)."""
    directory = Path(directory)
    config = train_config.to_dict() if hasattr(train_config, "to_dict") else train_config
    split = ((config or {}).get("eval") or {}).get("split")
    facts = card_facts(directory, config, metrics, step, split)
    path = directory / CARD_FILE
    return write_file(path, render_card(facts, LOAD_CHECKPOINT.format(folder=directory)))


def write_export_card(directory: Path, facts: dict) -> Path:
    """``directory/README.md`` of an ONNX export, from the checkpoint's card facts."""
    path = directory / CARD_FILE
    return write_file(path, render_card(redacted(facts), LOAD_EXPORT.format(folder=directory)))  # older cards too
