"""SCST reward throughput: our token-id CIDEr-D vs pycocoevalcap's Cider scorer per batch, and the reward's share of
a whole SCST step.

    python -m benchmarks.bench_scst_reward [--quick] [--json PATH]

A synthetic "training split" (Zipf-like words, 5 references per image) gives the document frequencies; each batch is
32 images x 5 sampled captions. The baseline is the route self-critical.pytorch takes: turn the sampled ids into
strings and score the batch with a coco-caption Cider scorer (here pycocoevalcap 1.2's, whose document frequencies
come from the batch). The SCST step (sample 5 captions per image with a demo- or COCO-sized decoder on cached
features, reward, loss, backward, optimizer step) is timed in the same run to report the reward's share.
"""
from __future__ import annotations

import random
import time

import numpy as np
import torch
from pycocoevalcap.cider.cider import Cider

from benchmarks.common import benchmark_parser, best_time, write_result
from data_pipelines.vocab import SPECIALS
from modeling import CaptionerConfig
from modeling.decoder import Decoder
from modeling.sampling import sample_captions
from trainer.scst.document_frequency import CiderDocumentFrequencies
from trainer.scst.loss import reward_baseline, scst_loss
from trainer.scst.reward import CiderDReward

EOS, PAD = 2, 0


def zipf_words(rng: random.Random, words: list[str], weights: list[float], low: int, high: int) -> list[str]:
    return rng.choices(words, weights, k=rng.randint(low, high))


def synthetic_split(num_images: int, num_words: int, seed: int = 0):
    rng = random.Random(seed)
    words = [f"w{index}" for index in range(num_words)]
    weights = [1.0 / (rank + 1) for rank in range(num_words)]
    references = [[" ".join(zipf_words(rng, words, weights, 6, 14)) for _ in range(5)] for _ in range(num_images)]
    return [f"img{index}" for index in range(num_images)], references, words, weights


def sampled_batch(rng, image_ids, vocab, weights, batch, samples, max_len):
    """Random captions over the model vocabulary (ids), 5 per image, ended by <eos> or max_len."""
    chosen = rng.sample(image_ids, batch)
    tokens = np.full((batch, samples, max_len), PAD, dtype=np.int64)
    for b in range(batch):
        for s in range(samples):
            length = rng.randint(5, max_len)
            tokens[b, s, :length] = rng.choices(range(len(SPECIALS), len(vocab)), weights[:len(vocab) - 4], k=length)
            if length < max_len:
                tokens[b, s, length] = EOS
    return chosen, tokens


def coco_route(cider: Cider, image_ids, tokens, vocab, references):
    """What self-critical.pytorch does per batch: ids -> strings, one key per caption, score the batch."""
    res, gts = {}, {}
    for b, image_id in enumerate(image_ids):
        for s, row in enumerate(tokens[b].tolist()):
            words = row[: row.index(EOS)] if EOS in row else row
            res[len(res)] = [" ".join(vocab[t] for t in words)]
            gts[len(gts)] = references[image_id]
    _, scores = cider.compute_score(gts, res)
    return np.asarray(scores).reshape(tokens.shape[:2])


def scst_step_share(reward, image_ids, rng, vocab_size, hidden, batch, samples, max_len, repeats):
    """Seconds of one SCST step and of its reward, for a decoder of the given size on cached 49-region features."""
    torch.manual_seed(0)
    decoder = Decoder(CaptionerConfig(vocab_size=vocab_size, hidden_dim=hidden, dropout=0.5))
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-5)
    features = torch.randn(batch, 49, 256)
    reward_times, step_times = [], []
    for _ in range(repeats):
        chosen = rng.sample(image_ids, batch)
        start = time.perf_counter()
        out = sample_captions(decoder, features, max_len, bos_id=1, eos_id=EOS, pad_id=PAD, num_samples=samples)
        reward_start = time.perf_counter()
        rewards = torch.from_numpy(reward(chosen, out.tokens.view(batch, samples, -1)))
        reward_times.append(time.perf_counter() - reward_start)
        advantage = (rewards - reward_baseline(rewards, "mean_others")).view(-1)
        loss = scst_loss(out.log_probs, out.mask, advantage.float())
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)
    return float(np.median(step_times)), float(np.median(reward_times))


def main() -> None:
    parser = benchmark_parser(__doc__, "a 5000-image training split and 5 repeats (default 40000 and 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the SCST step (default 1: on a "
                        "shared 2-core machine more threads oversubscribe the cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    num_images, repeats = (5000, 5) if args.quick else (40000, 20)
    batch, samples, max_len = 32, 5, 16
    image_ids, references, words, weights = synthetic_split(num_images, num_words=12000)
    start = time.perf_counter()
    table = CiderDocumentFrequencies.from_references(image_ids, references)
    build_seconds = time.perf_counter() - start
    vocab = [*SPECIALS, *words[:9000]]  # the model's vocabulary misses the rarest reference words
    reward = CiderDReward(table, vocab, eos_id=EOS)
    tokenized = dict(zip(image_ids, references))  # already lower-case words: the PTB tokenizer leaves them as they are

    rng = random.Random(1)
    batches = [sampled_batch(rng, image_ids, vocab, weights, batch, samples, max_len) for _ in range(repeats)]
    cider = Cider()
    ours = best_time(lambda: [reward(ids, tokens) for ids, tokens in batches], 3) / repeats
    coco = best_time(lambda: [coco_route(cider, ids, tokens, vocab, tokenized) for ids, tokens in batches], 3) / repeats
    captions = batch * samples
    result = {"train_images": num_images, "captions_per_batch": captions, "df_build_s": build_seconds,
              "threads": args.threads,
              "ours_captions_per_s": captions / ours, "pycocoevalcap_captions_per_s": captions / coco,
              "speedup": coco / ours}
    for name, vocab_size, hidden in (("demo", 40, 256), ("coco", len(vocab), 512)):
        step, reward_part = scst_step_share(reward, image_ids, rng, vocab_size, hidden, batch, samples, max_len,
                                            max(3, repeats // 4))
        result[f"step_{name}_s"], result[f"reward_share_{name}"] = step, reward_part / step
    print(f"{num_images} training images, document frequencies built in {build_seconds:.2f} s")
    print(f"reward, {batch} images x {samples} samples: ours {result['ours_captions_per_s']:9.0f} captions/s, "
          f"pycocoevalcap Cider per batch {result['pycocoevalcap_captions_per_s']:7.0f} captions/s, "
          f"speed-up {result['speedup']:.1f}x")
    for name in ("demo", "coco"):
        print(f"SCST step ({name}-sized decoder): {result[f'step_{name}_s'] * 1000:.0f} ms, "
              f"reward share {100 * result[f'reward_share_{name}']:.1f}%")
    write_result(result, args.json)


if __name__ == "__main__":
    main()
