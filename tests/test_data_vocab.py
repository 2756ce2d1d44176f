"""Tokenizer and Vocabulary: PTB-like tokenization, train-only build, deterministic order, encode/decode, vocab.json."""
import json

import pytest

from data_pipelines.vocab import Vocabulary, tokenize


@pytest.mark.parametrize("text, expected", [
    ("A man, riding.", ["a", "man", "riding"]),
    ("Two dogs -- playing?! ... `` yes '' ; ok: -LRB- x -RRB-", ["two", "dogs", "playing", "yes", "ok", "x"]),
    ("A man's T-shirt isn't red", ["a", "man", "'s", "t-shirt", "is", "n't", "red"]),
    ("  3.5 kg / 10 lbs & more  ", ["3.5", "kg", "10", "lbs", "more"]),
    ("", []),
])
def test_tokenize_lowercases_and_drops_ptb_punctuation(text, expected):
    assert tokenize(text) == expected


def test_build_keeps_frequent_words_ordered_by_count_then_word():
    captions = ["A dog runs.", "a cat runs", "A dog sleeps!", "the bird"]
    vocab = Vocabulary.build(captions, min_freq=2)
    assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "dog", "runs"]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.counts == [3, 2, 2]
    # ties broken alphabetically, so input order does not matter
    assert Vocabulary.build(["b a", "a b", "c"], min_freq=1).itos[4:] == ["a", "b", "c"]
    assert Vocabulary.build(reversed(captions), min_freq=2).itos == vocab.itos


def test_build_with_max_len_counts_only_the_words_the_model_sees():
    vocab = Vocabulary.build(["one two three four", "one two three five"], min_freq=1, max_len=2)
    assert vocab.itos[4:] == ["one", "two"]


def test_encode_decode_round_trip_with_unknowns_and_max_len():
    vocab = Vocabulary.build(["a red ball", "a blue ball"], min_freq=1)
    ids = vocab.encode("A red, unseen ball.")
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert ids[1:-1] == [vocab.stoi["a"], vocab.stoi["red"], vocab.unk_id, vocab.stoi["ball"]]
    assert vocab.decode(ids) == "a red <unk> ball"
    assert vocab.encode("a red ball", max_len=2) == [1, vocab.stoi["a"], vocab.stoi["red"], 2]
    # decode skips bos/pad and stops at the first eos
    assert vocab.decode([1, vocab.stoi["blue"], 0, vocab.stoi["ball"], 2, vocab.stoi["red"], 0]) == "blue ball"
    with pytest.raises(ValueError, match="token id 99"):
        vocab.decode([99])


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary.build(["a red ball", "a blue ball", "a red car"], min_freq=2)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.itos == vocab.itos and loaded.counts == vocab.counts and loaded.min_freq == 2
    assert loaded.encode("a red ball") == vocab.encode("a red ball")


@pytest.mark.parametrize("content, message", [
    ("{not json", "line 1, column 2"),
    ('["a", "b"]', "not a vocabulary file"),
    ('{"format": "showattend-vocab", "specials": ["<pad>"], "words": [], "counts": []}', "'specials'"),
    ('{"format": "showattend-vocab", "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "words": ["a", 3],'
     ' "counts": [1, 1]}', "'words'"),
    ('{"format": "showattend-vocab", "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "words": ["a", "a"],'
     ' "counts": [1, 1]}', "appears twice"),
    ('{"format": "showattend-vocab", "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "words": ["a"],'
     ' "counts": []}', "'counts'"),
])
def test_load_rejects_bad_files_naming_file_and_key(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        Vocabulary.load(path)
    assert str(path) in str(error.value)


def test_saved_file_is_plain_json_with_specials_first(tmp_path):
    Vocabulary.build(["x y"], min_freq=1).save(tmp_path / "v.json")
    payload = json.loads((tmp_path / "v.json").read_text())
    assert payload["specials"] == ["<pad>", "<bos>", "<eos>", "<unk>"] and payload["words"] == ["x", "y"]
