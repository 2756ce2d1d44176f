"""A run's data sources: the config's data.sources entries, their names and weights, one vocabulary for a mixture
(``showattend-prepare vocab --from``), a mixture's validation score and its SCST document frequencies."""
import pytest
from test_data_stream import captions_for, write_dataset

from data_pipelines import prepare
from data_pipelines.data_sources import DataSource, mixture_fingerprint, mixture_vocabulary, named_sources
from data_pipelines.manifest import dataset_fingerprint
from data_pipelines.vocab import Vocabulary
from trainer.config.schema import load_config
from trainer.scst.df_cache import load_document_frequencies
from trainer.training.validation import ValidationResult, weighted_result


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("sources")
    return [write_dataset(base / "coco", {"train": [3, 3], "val": [2]}),
            write_dataset(base / "flickr", {"train": [2, 2, 2, 2], "val": [3]})]


def test_config_reads_sources_and_names_the_wrong_key():
    config = load_config(None, ["data.sources=[{root: /d/coco/, weight: 3}, {root: /d/f30k, name: flickr}]"])
    assert config.data_sources() == [DataSource("/d/coco/", 3.0, "coco"), DataSource("/d/f30k", 1.0, "flickr")]
    assert load_config(None, ["data.root=/d/coco"]).data_sources() == [DataSource("/d/coco", 1.0, "coco")]
    with pytest.raises(ValueError, match=r"unknown config key 'data.sources\[1\].wieght'; valid keys here: "
                                         r"\['data.sources\[1\].root', 'data.sources\[1\].weight'"):
        load_config(None, ["data.sources=[{root: /a}, {root: /b, wieght: 2}]"])
    with pytest.raises(ValueError, match="'data.root' / 'data.features' and 'data.sources' exclude each other"):
        load_config(None, ["data.root=/a", "data.sources=[{root: /b}]"])
    with pytest.raises(ValueError, match=r"data.sources\[1\].name 'coco' is also the name of data.sources\[0\]"):
        load_config(None, ["data.sources=[{root: /a/coco}, {root: /b/coco}]"])
    with pytest.raises(ValueError, match=r"data.sources\[0\].weight is -1.0: expected a positive number"):
        load_config(None, ["data.sources=[{root: /a, weight: -1}]"])
    with pytest.raises(ValueError, match="either every source has a feature cache"):
        named_sources([DataSource("/a", features="/fa"), DataSource("/b")])


def test_fingerprint_of_one_source_is_its_datasets_and_a_mixture_changes_with_any_source(roots):
    coco, flickr = (DataSource(str(root), 1.0, root.name) for root in roots)
    assert mixture_fingerprint([coco]) == dataset_fingerprint(roots[0])
    both = mixture_fingerprint([coco, flickr])
    assert both != mixture_fingerprint([coco, DataSource(flickr.root, 2.0, flickr.name)])
    assert both != mixture_fingerprint([flickr, coco])


def test_prepare_vocab_counts_every_sources_train_captions(roots, tmp_path):
    out = tmp_path / "mix_vocab.json"
    prepare.run(["vocab", "--from", *roots, "--out", out, "--min-word-freq", "2"])
    captions = [c for index in list(range(6)) + list(range(8)) for c in captions_for(index)]  # ids restart per dataset
    assert Vocabulary.load(out).itos == Vocabulary.build(captions, min_freq=2).itos
    with pytest.raises(ValueError, match="exists"):
        prepare.run(["vocab", "--from", *roots, "--out", out])
    with pytest.raises(ValueError, match="lies inside the prepared dataset"):
        prepare.run(["vocab", "--from", *roots, "--out", roots[0] / "vocab.json"])


def test_sources_with_different_vocabularies_need_data_vocab(roots, tmp_path):
    Vocabulary(["red"]).save(roots[0] / "vocab.json")
    Vocabulary(["red", "blue"]).save(roots[1] / "vocab.json")
    sources = [DataSource(str(root), name=root.name) for root in roots]
    with pytest.raises(ValueError, match=r"a mixture trains one vocabulary; build it .* --from .*coco .*flickr"):
        mixture_vocabulary(sources, None)
    Vocabulary(["red", "blue"]).save(tmp_path / "mix.json")
    assert mixture_vocabulary(sources, str(tmp_path / "mix.json")).itos[4:] == ["red", "blue"]
    Vocabulary(["red"]).save(roots[1] / "vocab.json")
    assert mixture_vocabulary(sources, None).itos[4:] == ["red"]  # the same file everywhere is the run's


def test_mixture_score_is_the_weighted_mean_and_per_image_scores_average_to_it():
    sources = [DataSource("/a", 3.0, "a"), DataSource("/b", 1.0, "b")]
    results = {"a": ValidationResult(metrics={"CIDEr": 1.0, "Bleu_4": 0.2}, cider_per_image={"1": 0.5, "2": 1.5}),
               "b": ValidationResult(metrics={"CIDEr": 2.0, "Bleu_4": 0.4}, cider_per_image={"1": 2.0}, num_images=1)}
    result = weighted_result(results, sources)
    assert result.metrics == pytest.approx({"CIDEr": 1.25, "Bleu_4": 0.25})
    assert result.source_metrics == {"a": results["a"].metrics, "b": results["b"].metrics}
    assert sorted(result.cider_per_image) == ["a/1", "a/2", "b/1"]
    assert sum(result.cider_per_image.values()) / 3 == pytest.approx(1.25)


def test_scst_document_frequencies_of_a_mixture_count_every_source(roots, tmp_path):
    sources = [DataSource(str(root), name=root.name) for root in roots]
    table = load_document_frequencies(sources, cache_path=tmp_path / "df.safetensors")
    assert table.num_images == 6 + 8 and "coco/img0000" in table.image_ids and "flickr/img0000" in table.image_ids
    assert load_document_frequencies(sources, cache_path=tmp_path / "df.safetensors").digest() == table.digest()
    assert table.fingerprint.startswith("coco=") and "+flickr=" in table.fingerprint
