"""The training split's CIDEr-D document-frequency cache: built from the shards, safetensors, reused, rebuilt when the
prepared data changes, and usable when the data folder is read-only."""
import io

import numpy as np
import pytest
from PIL import Image

from data_pipelines.prepare import PrepareOptions, prepare
from data_pipelines.sources.common import Record
from trainer.scst import df_cache
from trainer.scst.df_cache import CACHE_NAME, load_document_frequencies
from trainer.scst.document_frequency import CiderDocumentFrequencies


def png(seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def prepare_dataset(out, train_captions, overwrite=False):
    records = [Record(f"t{index}", "train", captions, png(index), f"mem/{index}")
               for index, captions in enumerate(train_captions)]
    records.append(Record("v0", "val", ["A val caption."], png(99), "mem/v0"))
    prepare(records, [], out, PrepareOptions(image_size=40, shard_size=2, min_word_freq=1, overwrite=overwrite))
    return out


TRAIN = [["A red bus.", "The bus is red!"], ["A dog on grass."], ["Two cats & a dog.", "cats (two) sleeping"]]


def test_cache_is_built_from_the_train_shards_then_reused(tmp_path, monkeypatch):
    root = prepare_dataset(tmp_path / "data", TRAIN)
    table = load_document_frequencies(root)
    expected = CiderDocumentFrequencies.from_references(["t0", "t1", "t2"], TRAIN)
    assert sorted(table.image_ids) == ["t0", "t1", "t2"] and table.num_images == 3
    assert set(table.words) == set(expected.words) and "&" in table.words and "-lrb-" in table.words
    for codes, df, expected_codes, expected_df in zip(table.gram_codes, table.gram_df, expected.gram_codes,
                                                      expected.gram_df):  # same words, so the same n-gram ids
        assert np.array_equal(codes, expected_codes) and np.array_equal(df, expected_df)
    cache = root / CACHE_NAME
    assert cache.is_file() and not [p for p in root.iterdir() if p.name.endswith(".partial")]
    assert cache.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then a JSON header (no pickle)

    def must_not_rebuild(*args, **kwargs):
        raise AssertionError("a valid cache was rebuilt")

    monkeypatch.setattr(df_cache, "split_references", must_not_rebuild)
    assert load_document_frequencies(root).digest() == table.digest()


def test_cache_is_rebuilt_when_the_prepared_data_changes_or_is_corrupt(tmp_path):
    root = prepare_dataset(tmp_path / "data", TRAIN)
    first = load_document_frequencies(root)
    prepare_dataset(root, [["A yellow submarine."], ["A dog on grass."], ["A green field."], ["Sky."]],
                    overwrite=True)
    assert not (root / CACHE_NAME).exists()  # prepare replaces the folder; a stale cache could also survive a copy
    stale = tmp_path / "stale.safetensors"
    first.save(stale)
    second = load_document_frequencies(root, cache_path=stale)
    assert second.num_images == 4 and "submarine" in second.words and second.fingerprint != first.fingerprint
    assert CiderDocumentFrequencies.load(stale).digest() == second.digest()
    stale.write_bytes(b"not a safetensors file")
    assert load_document_frequencies(root, cache_path=stale).digest() == second.digest()


def test_unwritable_cache_location_builds_in_memory(tmp_path):
    root = prepare_dataset(tmp_path / "data", TRAIN)
    table = load_document_frequencies(root, cache_path=tmp_path / "missing_folder" / CACHE_NAME)
    assert table.num_images == 3 and not (tmp_path / "missing_folder").exists()


def test_load_rejects_other_files_with_a_clear_error(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"junk")
    with pytest.raises(ValueError, match="x.safetensors"):
        CiderDocumentFrequencies.load(path)
