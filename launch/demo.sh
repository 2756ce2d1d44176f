#!/usr/bin/env bash
# The whole framework in one command, offline, on 2 CPU cores (or every GPU there is):
#   synthetic dataset -> prepare karpathy -> feature cache -> accelerate launch trainer/train.py (cross-entropy, then
#   self-critical; DEMO_SCST=0 skips the second stage)
#   -> trainer.evaluate_checkpoint (test split, HTML report) -> trainer.caption (a few test images, attention PNGs) -> summary.
#
#   bash launch/demo.sh                                       # built-in synthetic dataset (preset "shapes")
#   bash launch/demo.sh --preset toys                         # another synthetic preset: shapes|toys|cluttered|scenes|textures
#   bash launch/demo.sh --karpathy-json FILE --images ROOT    # your own Karpathy-format data instead
#   bash launch/demo.sh --work DIR [key=value ...]            # another work dir; overrides go to trainer/train.py
#   DEMO_NUM_IMAGES / DEMO_IMAGE_SIZE / DEMO_SHARD_SIZE size the data (defaults 3000 / 128 / 100; DEMO_IMAGE_SIZE
#   also sets the drawn size of synthetic images, else each preset draws at its own size);
#   DEMO_WEIGHTS=imagenet|PATH uses a real backbone (default none: random and frozen, offline).
#   DEMO_MINUTES (default 15) is the whole run's wall-clock budget: cross-entropy trains while val CIDEr-D improves
#   (configs/demo.yaml: eval.patience), within what the budget leaves after keeping some for SCST and the evaluations;
#   SCST gets the rest (train.max_minutes of each stage).
#
# Idempotent: data, features and finished training are reused on a second run (training resumes from its latest
# checkpoint), but only when they were built from the same inputs and settings (recorded in WORK/demo_inputs.json);
# otherwise the demo stops and says so, and nothing is deleted. The last line of output is the test-split metrics as
# one JSON object.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=""
preset="shapes"
karpathy_json=""
images=""
num_images="${DEMO_NUM_IMAGES:-3000}"
image_size="${DEMO_IMAGE_SIZE:-128}"
synthetic_size=(${DEMO_IMAGE_SIZE:+--image-size "$DEMO_IMAGE_SIZE"})
weights="${DEMO_WEIGHTS:-none}"  # frozen backbone: none (random, offline) | imagenet | PATH
shard_size="${DEMO_SHARD_SIZE:-100}"  # >= 8 train shards, so up to 8 ranks x 1 worker get one each
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --karpathy-json) karpathy_json="$(realpath "$2")"; shift 2 ;;
    --images) images="$(realpath "$2")"; shift 2 ;;
    --work) work="$(realpath -m "$2")"; shift 2 ;;
    --preset) preset="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# each preset gets its own default work dir, so the built-in demo's files stay where they were
[ -n "$work" ] || work="$repo/runs/demo$([ "$preset" = shapes ] || echo "-$preset")"
if [ -n "$karpathy_json" ] && [ -z "$images" ]; then
  echo "demo.sh: --karpathy-json needs --images ROOT (the folder the JSON's filepath/filename are relative to)" >&2
  exit 2
fi

cd "$repo"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_EVALUATE_OFFLINE=1
python="${PYTHON:-python}"
stage() { echo; echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }  # SECONDS: bash's seconds since start

# 0. What this work dir is built from: source (the JSON's sha256, or the synthetic set's size) and data settings.
if [ -n "$karpathy_json" ] && [ ! -f "$karpathy_json" ]; then
  echo "demo.sh: --karpathy-json $karpathy_json: no such file" >&2
  exit 2
fi
inputs="$("$python" - "$image_size" "$shard_size" "$weights" "$num_images" "$karpathy_json" "$images" <<'PY'
import hashlib, json, os, sys
image_size, shard_size, weights, num_images, karpathy_json, images = sys.argv[1:]
record = {"image_size": image_size, "shard_size": shard_size, "weights": weights}
if karpathy_json:
    digest = hashlib.sha256()
    with open(karpathy_json, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    record.update(karpathy_json=karpathy_json, karpathy_json_sha256=digest.hexdigest(), images=os.path.realpath(images))
else:
    record.update(synthetic_num_images=num_images, synthetic_seed=0)
print(json.dumps(record, sort_keys=True))
PY
)"
built=()
for part in synthetic prepared features train; do if [ -e "$work/$part" ]; then built+=("$work/$part"); fi; done
if [ "${#built[@]}" -gt 0 ]; then
  recorded="$(cat "$work/demo_inputs.json" 2>/dev/null || echo "nothing recorded (built by an older demo.sh)")"
  if [ "$recorded" != "$inputs" ]; then
    { echo "demo.sh: ${built[*]} were built from other inputs or settings; not reusing them."
      echo "  built from: $recorded"
      echo "  asked for:  $inputs"
      echo "  pass another --work DIR, or delete those folders to rebuild them here"; } >&2
    exit 2
  fi
fi
mkdir -p "$work"
echo "$inputs" > "$work/demo_inputs.json"

# 1. Data: the synthetic scenes (or the user's Karpathy JSON) -> WebDataset shards + vocab.
if [ -z "$karpathy_json" ]; then
  karpathy_json="$work/synthetic/dataset_synthetic.json"
  images="$work/synthetic"
  if [ -f "$karpathy_json" ]; then
    stage "synthetic dataset: reusing $work/synthetic"
  else
    stage "synthetic dataset: $num_images images, preset $preset"
    "$python" -m data_pipelines.synthetic --out "$work/synthetic" --num-images "$num_images" --seed 0 \
      --preset "$preset" "${synthetic_size[@]}"
  fi
fi
if [ -f "$work/prepared/manifest.json" ]; then
  stage "prepare: reusing $work/prepared"
else
  stage "prepare karpathy -> $work/prepared"
  "$python" -m data_pipelines.prepare karpathy --json "$karpathy_json" --images "$images" --out "$work/prepared" \
    --image-size "$image_size" --shard-size "$shard_size" --workers 2
fi

# 2. Frozen backbone features, computed once (ResNet-50 is the slow part on a CPU).
if [ -f "$work/features/manifest.json" ]; then
  stage "feature cache: reusing $work/features"
else
  stage "feature cache -> $work/features"
  "$python" -m data_pipelines.features --data "$work/prepared" --out "$work/features" --weights "$weights" \
    --image-size "$image_size"
fi

# 3. Train: every GPU if there are any, else 2 CPU processes (one thread each) over gloo.
if "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  launcher=("$python" -m accelerate.commands.launch --multi_gpu --num_processes "$("$python" -c 'import torch; print(torch.cuda.device_count())')")
else
  export OMP_NUM_THREADS=1
  launcher=("$python" -m accelerate.commands.launch --config_file launch/cpu_2proc.yaml)
fi
# The budget: the evaluations after training keep tail_s, SCST at least scst_s; each stage gets what is left then.
budget_s=$(( ${DEMO_MINUTES:-15} * 60 )); tail_s=90; scst_s=$([ "${DEMO_SCST:-1}" != 0 ] && echo 180 || echo 0)
minutes_left() { "$python" -c 'import sys; print(f"{max(0.5, (int(sys.argv[1]) - int(sys.argv[2])) / 60):.2f}")' \
  "$budget_s" "$((SECONDS + tail_s + $1))"; }
train_dir="$work/train"
stage "train: ${launcher[*]} trainer/train.py --config configs/demo.yaml --resume auto"
# --resume auto: a rerun continues (or finds the run finished); a first run starts fresh
"${launcher[@]}" trainer/train.py --config configs/demo.yaml --resume auto \
  output_dir="$train_dir" data.root="$work/prepared" data.features="$work/features" data.image_size="$image_size" \
  model.encoder_weights="$weights" train.max_minutes="$(minutes_left "$scst_s")" \
  "${overrides[@]}"
checkpoint="$train_dir/best"
[ -d "$checkpoint" ] || checkpoint="$train_dir/checkpoints/$(ls "$train_dir/checkpoints" | grep '^step_' | sort | tail -n 1)"
xe_checkpoint="$checkpoint"

# 3b. Self-critical stage (CIDEr-D reward, configs/demo_scst.yaml) from the cross-entropy stage's best checkpoint;
# DEMO_SCST=0 skips it. The same key=value overrides apply to both stages.
if [ "${DEMO_SCST:-1}" != 0 ]; then
  scst_dir="$work/train_scst"
  stage "self-critical training from $xe_checkpoint: trainer/train.py --config configs/demo_scst.yaml --resume auto"
  "${launcher[@]}" trainer/train.py --config configs/demo_scst.yaml --resume auto train.init_from="$xe_checkpoint" \
    output_dir="$scst_dir" data.root="$work/prepared" data.features="$work/features" data.image_size="$image_size" \
    model.encoder_weights="$weights" train.max_minutes="$(minutes_left 0)" "${overrides[@]}"
  checkpoint="$scst_dir/best"
fi
unset OMP_NUM_THREADS

# 4. Evaluate on the test split (batched beam search), COCO-results JSON + metrics + the HTML report.
stage "evaluate $checkpoint on the test split"
"$python" -m trainer.evaluate_checkpoint --checkpoint "$checkpoint" --data "$work/prepared" --features "$work/features" \
  --split test --out "$work/results_test.json" --report "$work/report" | tee "$work/evaluate.log"
metrics="$(tail -n 1 "$work/evaluate.log")"
xe_metrics=""
if [ "$checkpoint" != "$xe_checkpoint" ]; then
  stage "evaluate the cross-entropy stage's $xe_checkpoint on the test split"
  "$python" -m trainer.evaluate_checkpoint --checkpoint "$xe_checkpoint" --data "$work/prepared" \
    --features "$work/features" --split test --out "$work/results_test_xe.json" | tee "$work/evaluate_xe.log"
  xe_metrics="$(tail -n 1 "$work/evaluate_xe.log")"
fi

# 5. Caption a few test images from their files, with one attention PNG per image.
stage "caption 4 test images with attention maps"
mapfile -t test_images < <("$python" - "$karpathy_json" "$images" <<'PY'
import json, pathlib, sys
data, root = json.loads(pathlib.Path(sys.argv[1]).read_text()), pathlib.Path(sys.argv[2])
tests = [im for im in data["images"] if im["split"] == "test"][:4]
for im in tests:
    print(root / im.get("filepath", "") / im["filename"])
PY
)
"$python" -m trainer.caption --checkpoint "$checkpoint" --attention-dir "$work/attention" "${test_images[@]}"

# 6. Reference points on the same split: the blind baseline, one human caption against the others, the best reference
#    (and how far each stage's captions are from it).
stage "baselines on the test split (python -m trainer.baselines)"
results=("$work/results_test.json")
[ -z "$xe_metrics" ] || results=("$work/results_test_xe.json" "${results[@]}")
baselines="$("$python" -m trainer.baselines --data "$work/prepared" --split test --results "${results[@]}" | tail -n 1)"
"$python" - "$metrics" "$baselines" "$xe_metrics" "$train_dir" "${scst_dir:-}" "${results[@]}" <<'PY'
import json, sys
from pathlib import Path
model, baselines = json.loads(sys.argv[1]), json.loads(sys.argv[2])
stages = ["XE best (test)", "XE+SCST best (test)"] if sys.argv[3] else ["model (test)"]
rows = dict(zip(stages, [json.loads(sys.argv[3]), model] if sys.argv[3] else [model]))
rows.update({"blind baseline": baselines["blind"], "human (1 ref vs rest)": baselines["human"],
             "best reference": baselines["best_reference"]})
names = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]
print(f"{'':24}" + "".join(f"{name:>9}" for name in names))
for label, values in rows.items():
    print(f"{label:24}" + "".join(f"{values[name]:9.3f}" for name in names))
print(f"blind baseline caption: {baselines['blind_caption']!r}")
for name, run in (("XE", sys.argv[4]), ("SCST", sys.argv[5])):
    if run and (Path(run) / "run_summary.json").is_file():
        ended = json.loads((Path(run) / "run_summary.json").read_text())
        print(f"{name}: ended at step {ended['steps']} ({ended['stop_reason']}), best val CIDEr-D "
              f"{ended['best_cider'] or 0:.3f} at step {ended['best_step']}, {ended['wall_seconds'] / 60:.1f} min")
if sys.argv[3]:
    print(f"SCST stage: test CIDEr-D {rows[stages[0]]['CIDEr']:.3f} -> {model['CIDEr']:.3f} "
          f"({100 * (model['CIDEr'] / rows[stages[0]]['CIDEr'] - 1):+.1f}%)")
print("gap to the best reference (CIDEr-D), on images captioned with one of their references | with another caption:")
for stage, path in zip(stages, sys.argv[6:]):
    gap = baselines["results"][path]
    print(f"  {stage:22} {gap['gap_on_references']:.3f} | {gap['gap_on_other_captions']:.3f} "
          f"({100 * gap['share_of_captions_that_are_references']:.0f}% of captions are references)")
PY

# 7. Learning curve: val CIDEr-D against wall-clock minutes and against steps, with the blind baseline and 4x it.
stage "learning curve -> $work/learning_curve.png"
blind_cider="$("$python" -c 'import json, sys; print(json.loads(sys.argv[1])["blind"]["CIDEr"])' "$baselines")"
"$python" -m benchmarks.learning_curve --run "$train_dir" --out "$work/learning_curve.png" --blind "$blind_cider" \
  --title "$(basename "$work"): val CIDEr-D" > "$work/learning_curve.json"

stage "done"
echo "checkpoints:     $train_dir/checkpoints (best by val CIDEr: $checkpoint)"
echo "test results:    $work/results_test.json"
echo "attention maps:  $work/attention"
echo "learning curve:  $work/learning_curve.png"
echo "tensorboard:     tensorboard --logdir $train_dir"
echo "report:          $work/report/index.html   (open it in a browser: table, curves, gallery)"
echo "wall time:       $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "test metrics:"
echo "$metrics"
