"""The sections of the training config below ``TrainConfig`` (``trainer.config.schema``), every field declared once
with ``setting(default, doc, range)``. The ``model:`` section mirrors ``modeling.CaptionerConfig`` and ``scst:`` lives
with the SCST code (``trainer.scst.config``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from modeling.config import Range, setting
from trainer.config.decoding_controls import with_decoding_controls
from trainer.config.fields import AT_LEAST_0, AT_LEAST_1, FRACTION_BELOW_1, POSITIVE, PROBABILITY, registered
from trainer.training.schedules import LR_SCHEDULES, TEACHER_FORCING_SCHEDULES
from trainer.training.trackers import TRACKERS


@dataclass
class SourceConfig:
    """One prepared dataset of a mixture (an entry of data.sources)."""

    root: str = setting("", "the directory (or URL) data_pipelines.prepare wrote (required)")
    weight: float = setting(1.0, "relative sampling rate: the source's share of the training samples is weight / "
                            "the sum of the weights", POSITIVE)
    name: str = setting("", "validation scores are logged as val/<name>/...; empty: the root's last path part")
    features: Optional[str] = setting(None, "a feature cache of root (every source has one, or none)")


@dataclass
class DataConfig:
    """The prepared dataset (or the weighted mixture of several) and how its training stream is read."""

    root: str = setting("", "the directory (or URL) data_pipelines.prepare wrote: shards, manifest, vocab (required "
                        "unless data.sources is given)")
    features: Optional[str] = setting(None, "a feature cache of root (data_pipelines.features): train on stored "
                                      "backbone features instead of images; null: images")
    sources: list[SourceConfig] = setting([], "several prepared datasets trained together instead of root: a list of "
                                          "{root, weight, name, features} (docs/data.md, 'Several datasets at once')")
    vocab: Optional[str] = setting(None, "the run's vocabulary file (showattend-prepare vocab --from ...); null: the "
                                   "vocab.json of root, or of the sources when they all hold the same one")
    image_size: int = setting(224, "side of the square training and validation images in pixels (ResNet-50 "
                              "downsamples 32x: smaller images have no feature map)", Range(32))
    captions_per_image: int = setting(1, "captions trained per image and step, drawn from its references", AT_LEAST_1)
    max_caption_len: int = setting(20, "words kept of a training caption (the rest is cut)", AT_LEAST_1)
    num_workers: int = setting(2, "DataLoader worker processes of each training process", AT_LEAST_0)
    augment: bool = setting(False, "random resized crops (scale 0.8-1) of the training images (not with features)")
    resampled: bool = setting(False, "every pass over the shards draws them with replacement")
    shuffle_buffer: int = setting(1000, "samples in the shuffle buffer of each loader worker", AT_LEAST_1)


@dataclass
class TrainSection:
    """Batch and length of the run; trainer.training.batch_plan splits the global batch over the processes."""

    global_batch_size: int = setting(32, "images per optimizer step over all processes (each process takes an equal "
                                     "share)", AT_LEAST_1)
    micro_batch_size: int = setting(0, "cap on the images of one forward/backward of a process: above it the process "
                                    "accumulates gradients; 0: no cap", AT_LEAST_0)
    max_steps: int = setting(1000, "optimizer steps of the global batch (the lr and teacher-forcing schedules span "
                             "them)", AT_LEAST_1)
    max_grad_norm: float = setting(5.0, "gradient norm clipping; 0 disables clipping (the norm is still logged)",
                                   AT_LEAST_0)
    stop_at_step: int = setting(0, "> 0: checkpoint and exit at this step (the schedules still span max_steps); "
                                "continue with --resume", AT_LEAST_0)
    max_minutes: float = setting(0.0, "wall-clock budget of this invocation in minutes (from its set-up on, "
                                 "validations included): a validation ends the run (wsd: starts its decay) when the "
                                 "main process estimates that the steps to the next validation (wsd: plus the decay) "
                                 "would not fit; 0: none. Depends on the machine's speed: a budget-ended run can end "
                                 "one evaluation earlier or later between runs", AT_LEAST_0)
    objective: Literal["xe", "scst"] = setting("xe", "cross-entropy, or self-critical sequence training (scst.*)")
    init_from: Optional[str] = setting(None, "a checkpoint directory: start from its weights with a fresh optimizer "
                                       "and schedule")
    compile: bool = setting(False, "torch.compile the decoder's recurrent step (one graph for any number of rows)")
    channels_last: bool = setting(False, "on images: backbone weights and inputs in NHWC (tensor-core convolutions)")


@dataclass
class OptimConfig:
    """AdamW."""

    lr: float = setting(4e-4, "peak learning rate (schedule.* scales it)", POSITIVE)
    weight_decay: float = setting(0.0, "decoupled weight decay", AT_LEAST_0)
    beta1: float = setting(0.9, "decay of the gradient's running mean", FRACTION_BELOW_1)
    beta2: float = setting(0.999, "decay of the squared gradient's running mean", FRACTION_BELOW_1)
    eps: float = setting(1e-8, "added to the denominator", POSITIVE)
    encoder_lr_factor: float = setting(0.25, "with model.finetune_from: the backbone's trained stages learn at "
                                       "optim.lr times this (their own parameter group; 0.25 of 4e-4 is the 1e-4 of "
                                       "the usual fine-tuning recipe)", POSITIVE)
    implementation: Literal["auto", "for_loop", "foreach", "fused"] = setting(
        "auto", "AdamW kernels: torch's choice (foreach on GPU), per tensor, batched, or one fused kernel (CPU and "
        "CUDA); all compute the same update up to rounding")


@dataclass
class ScheduleConfig:
    """Learning-rate multiplier: linear warmup, then a schedule of trainer.training.schedules.LR_SCHEDULES: cosine /
    step / constant / wsd (warmup-stable-decay)."""

    name: str = registered(
        "cosine", "the shape after warmup (wsd: constant until the run's end is decided, then a cosine decay over "
        "decay_steps ending at that end)", LR_SCHEDULES)
    warmup_steps: int = setting(0, "steps of linear warmup: (step + 1) / warmup_steps", AT_LEAST_0)
    min_lr_ratio: float = setting(0.0, "cosine, wsd: the floor as a fraction of optim.lr", PROBABILITY)
    step_size: int = setting(1000, "step: multiply by gamma every step_size steps after warmup", AT_LEAST_1)
    gamma: float = setting(0.8, "step: the decay factor", Range(0, 1, open_low=True))
    decay_steps: int = setting(0, "wsd: steps of the final cosine decay to min_lr_ratio, ending at the run's end "
                               "(train.max_steps, or earlier when eval.patience or train.max_minutes decide it); "
                               "needs >= 1 with wsd", AT_LEAST_0)


@dataclass
class TeacherForcingConfig:
    """Scheduled sampling (Bengio et al. 2015): probability of feeding the ground-truth token, per optimizer step."""

    schedule: str = registered("constant", "how the probability falls with the step i "
                               "(trainer.training.schedules.TEACHER_FORCING_SCHEDULES)", TEACHER_FORCING_SCHEDULES)
    start: float = setting(1.0, "the probability at step 0 (constant: at every step)", PROBABILITY)
    floor: float = setting(0.0, "the probability never falls below this (at most start)", PROBABILITY)
    k: float = setting(1.0, "exponential: start * k**i (needs k < 1); inverse_sigmoid: start * k / (k + exp(i / k)) "
                       "(needs k >= 1)", POSITIVE)
    decay: float = setting(0.0, "linear: start - decay * i", AT_LEAST_0)


@dataclass
class LossConfig:
    """Cross-entropy over the words plus the doubly stochastic attention term."""

    attention_lambda: float = setting(0.01, "weight of the doubly stochastic attention term (summed over regions, CE "
                                      "averaged over words); 0.01, not the paper's 1, which let the term dominate the "
                                      "loss (see docs/ablation.md)", AT_LEAST_0)
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", FRACTION_BELOW_1)


@dataclass
class EvalConfig:
    """Validation during training: decoding (the controls of modeling.DecodingOptions, all off by default: plain beam
    search) and CIDEr-D on eval.split."""

    every_steps: int = setting(500, "validate every this many steps; 0: only at the end", AT_LEAST_0)
    patience: int = setting(0, "end the run (wsd: start its decay) after this many validations in a row without a "
                            "gain of eval.min_gain in CIDEr-D; 0: never", AT_LEAST_0)
    min_gain: float = setting(0.0, "the relative gain over the best val CIDEr-D so far that counts as improving "
                              "(0.01: 1%); the first validation of a run always counts", AT_LEAST_0)
    best_min_z: float = setting(0.0, "a validation replaces best/ only when its per-image CIDEr-D beats the run's first "
                                "validation's (its start) by this many standard errors of the paired difference, as "
                                "well as the best's CIDEr-D; 0: any gain over the best", AT_LEAST_0)
    batch_size: int = setting(32, "images per decoding batch of each process", AT_LEAST_1)
    split: str = setting("val", "the split validated")
    metrics: list[str] = setting([], "the scores validation computes and logs as val/<name>, e.g. [CIDEr, Bleu_4] "
                                 "(CIDEr among them: best/ and eval.patience follow it); empty: every registered "
                                 "metric (trainer.evaluation.metrics)")
    num_samples: int = setting(4, "captions (text) and attention overlays (images) logged per validation", AT_LEAST_0)


EvalConfig = with_decoding_controls(EvalConfig, after="best_min_z")  # eval.beam_size, eval.max_len, ...


@dataclass
class CheckpointConfig:
    """Step checkpoints in output_dir/checkpoints (the best by CIDEr-D goes to output_dir/best)."""

    every_steps: int = setting(500, "checkpoint every this many steps; 0: only at the end (and on SIGTERM / Ctrl-C)",
                               AT_LEAST_0)
    keep_last: int = setting(3, "step checkpoints kept (the newest)", AT_LEAST_1)


@dataclass
class LoggingConfig:
    """Training scalars: output_dir/train_log.jsonl and the trackers."""

    every_steps: int = setting(10, "log the rank-averaged losses, grad norm, lr and samples/s every this many steps",
                               AT_LEAST_1)
    image_ids: bool = setting(False, "write output_dir/image_ids.jsonl: the image ids of every step's global batch")
    trackers: list[str] = registered(["tensorboard"], "Accelerate trackers: tensorboard (always; "
                                     "OUTPUT_DIR/tensorboard), wandb, mlflow when installed "
                                     "(trainer.training.trackers.TRACKERS)", TRACKERS)


@dataclass
class DistributedConfig:
    """Several processes (accelerate launch)."""

    timeout_s: float = setting(1800.0, "process-group timeout: a rank silent this long is reported lost and the run "
                               "exits", POSITIVE)
