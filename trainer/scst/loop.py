"""Self-critical sequence training inside the shared training loop (validation, checkpoints, resume, logging).

Each micro-batch: sample ``scst.samples`` captions per image through the DDP-wrapped ``CaptionSampler`` (no teacher
forcing), reward each by CIDEr-D against its image's references (every rank rewards its own images, with the same
training-split document frequencies), subtract the baseline, and minimise ``scst_loss`` (+ ``loss.attention_lambda``
x the doubly stochastic attention term over the sampled steps). Sampling draws from the global RNG, which every
checkpoint records per rank, so a resumed run continues exactly.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from accelerate.utils import gather_object

from data_pipelines.stream_samples import model_input
from trainer.scst.df_cache import CACHE_NAME, load_document_frequencies
from trainer.scst.loss import reward_baseline, scst_loss
from trainer.scst.reward import CiderDReward
from trainer.training.loop import TrainingLoop
from trainer.training.losses import doubly_stochastic_attention

logger = logging.getLogger("trainer.train")


def build_reward(accelerator, config, vocab) -> CiderDReward:
    """The reward with the training split's document frequencies: the main process builds and caches them first,
    then every rank loads them; ranks that end up with different tables stop the run."""
    sources = config.data_sources()  # a mixture's table is cached in the run's folder
    cache_path = Path(config.output_dir) / CACHE_NAME if len(sources) > 1 else None
    if accelerator.is_main_process:
        table = load_document_frequencies(sources, cache_path=cache_path)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        table = load_document_frequencies(sources, cache_path=cache_path)
    digests = gather_object([table.digest()])
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks hold different CIDEr-D document frequencies (digests {digests})")
    logger.info("SCST reward: CIDEr-D with document frequencies of %d training images (%s)", table.num_images,
                digests[0])
    return CiderDReward(table, vocab.itos, vocab.eos_id)


def ignored_settings_note(config) -> str | None:
    """What an SCST run ignores from its config (scheduled sampling, label smoothing), or None."""
    ignored = []
    tf = config.teacher_forcing
    if tf.schedule != "constant" or tf.start != 1.0:
        ignored.append(f"teacher_forcing (schedule {tf.schedule}, start {tf.start})")
    if config.loss.label_smoothing:
        ignored.append(f"loss.label_smoothing={config.loss.label_smoothing}")
    if not ignored:
        return None
    return "train.objective=scst samples captions without teacher forcing; ignoring " + ", ".join(ignored)


class ScstTrainingLoop(TrainingLoop):
    """``model`` is the prepared (DDP-wrapped) ``CaptionSampler``; checkpoints hold its Captioner, as in XE runs."""

    stat_names = ("train/loss", "train/policy_loss", "train/attention_reg", "train/reward", "train/baseline",
                  "train/advantage_std", "train/sample_len", "train/entropy")

    def __init__(self, run, log, stop, *, reward: CiderDReward):
        super().__init__(run, log, stop)
        self.unwrapped = run.accelerator.unwrap_model(run.model).captioner
        self.reward = reward
        self.reward_seconds = 0.0  # spent computing rewards since the last logged step
        note = ignored_settings_note(run.config)
        if note:
            logger.info(note)

    def micro_batch_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        scst, device = self.config.scst, self.accelerator.device
        inputs = model_input(batch).to(device, non_blocking=True)
        samples = self.model(inputs, num_samples=scst.samples, max_len=scst.max_len, temperature=scst.temperature)
        image_ids = batch["image_id"]
        started = time.perf_counter()
        rewards = torch.from_numpy(self.reward(image_ids, samples.tokens.view(len(image_ids), scst.samples, -1)))
        greedy_rewards = None
        if scst.baseline == "greedy":  # one extra decode, eval mode, no gradient
            greedy = self.unwrapped.generate(inputs, beam_size=1, max_len=scst.max_len)
            greedy_rewards = torch.from_numpy(self.reward(image_ids, greedy.tokens.unsqueeze(1)))[:, 0]
        self.reward_seconds += time.perf_counter() - started
        baseline = reward_baseline(rewards, scst.baseline, greedy_rewards)
        advantage = (rewards - baseline).reshape(-1)
        loss = scst_loss(samples.log_probs, samples.mask, advantage.to(device, torch.float32), samples.entropy,
                         scst.entropy_weight)
        attention_reg = doubly_stochastic_attention(samples.alphas, samples.mask)
        total = loss.total + self.config.loss.attention_lambda * attention_reg
        words = samples.mask.sum(dim=1) - (samples.tokens == self.vocab.eos_id).sum(dim=1)  # before <eos>
        batch_stats = torch.tensor([rewards.mean(), baseline.mean(), advantage.std(correction=0),
                                    words.float().mean()], dtype=torch.float32, device=device)
        stats = torch.cat([torch.stack([total, loss.policy, attention_reg]).float(), batch_stats,
                           loss.entropy.reshape(1).float()])
        return total, stats

    def interval_scalars(self, elapsed: float) -> dict:
        """The share of the interval's training time this rank spent computing rewards."""
        share, self.reward_seconds = self.reward_seconds / max(elapsed, 1e-9), 0.0
        return {"train/reward_time_share": share}
