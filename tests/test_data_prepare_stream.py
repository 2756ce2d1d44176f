"""prepare -> stream loaders: the trainer's loaders read back every prepared image with its captions and pixels."""
import torch
from test_data_prepare import SPEC, make_images, resized, write_karpathy

from data_pipelines import prepare
from data_pipelines.stream import TrainLoaderOptions, build_eval_loader
from data_pipelines.train_stream import build_lane_loader
from data_pipelines.transforms import eval_transform
from data_pipelines.vocab import Vocabulary, tokenize


def test_prepared_shards_round_trip_through_train_and_eval_loaders(tmp_path):
    originals = make_images(tmp_path / "src")
    out = tmp_path / "out"
    prepare.run(["karpathy", "--json", write_karpathy(tmp_path / "src"), "--out", out, "--image-size", 32,
                 "--shard-size", 2, "--min-word-freq", 1, "--workers", 1])
    vocab = Vocabulary.load(out / "vocab.json")
    transform = eval_transform(32)

    seen = {}
    options = TrainLoaderOptions(batch_size=2, num_workers=1, captions_per_image=2, image_size=32)
    for batch in build_lane_loader(out, vocab, options, global_batch_size=2, lanes=range(1)):
        for image_id, captions, pixels in zip(batch["image_id"], batch["captions"], batch["pixels"]):
            seen[image_id] = (sorted(vocab.decode(row.tolist()) for row in captions), pixels)
    assert sorted(seen) == [i for i, (split, _) in SPEC.items() if split == "train"]
    for image_id, (decoded, pixels) in seen.items():
        assert decoded == sorted(" ".join(tokenize(caption)) for caption in SPEC[image_id][1])
        expected = transform(resized(originals[image_id], 32))
        assert (pixels - expected).abs().mean() < 0.1

    for split in ("val", "test"):
        batches = list(build_eval_loader(out, split=split, batch_size=4, num_workers=1, image_size=32))
        ids = [i for batch in batches for i in batch["image_id"]]
        assert ids == [i for i, (s, _) in SPEC.items() if s == split]
        for batch in batches:
            for image_id, references, pixels in zip(batch["image_id"], batch["references"], batch["pixels"]):
                assert references == SPEC[image_id][1]
                assert torch.allclose(pixels, transform(resized(originals[image_id], 32)), atol=0.6)
