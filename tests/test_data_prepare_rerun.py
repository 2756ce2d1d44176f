"""Re-running prepare into the same OUT: refused without --overwrite, replaced whole with it, and a crash mid-run
leaves the previous OUT untouched (or no OUT at all) and no temporary files."""
import pytest
from test_data_prepare import make_images, read_shards, write_karpathy

from data_pipelines import prepare, shard_writer


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture
def source(tmp_path):
    make_images(tmp_path / "src")
    return ["karpathy", "--json", write_karpathy(tmp_path / "src"), "--image-size", 32, "--min-word-freq", 1,
            "--workers", 1]


def test_existing_output_is_refused_unless_overwrite(tmp_path, source):
    out = tmp_path / "out"
    prepare.run([*source, "--out", out, "--shard-size", 1])
    before = snapshot(out)
    assert sum(name.startswith("train-") for name in before) == 4
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare.run([*source, "--out", out, "--shard-size", 10])
    assert snapshot(out) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        prepare.run([*source, "--out", tmp_path / "other"])

    manifest = prepare.run([*source, "--out", out, "--shard-size", 10, "--overwrite"])
    after = sorted(path.name for path in out.iterdir())
    assert after == ["manifest.json", "stats.json", "test-000000.tar", "train-000000.tar", "val-000000.tar",
                     "vocab.json"]  # no shard of the old run is left behind
    assert manifest["shard_size"] == 10 and len(read_shards(out)) == 6
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other", "out", "src"]


def test_empty_existing_folder_is_used(tmp_path, source):
    (tmp_path / "out").mkdir()
    prepare.run([*source, "--out", tmp_path / "out"])
    assert (tmp_path / "out" / "manifest.json").is_file()


def _crash_after(monkeypatch, samples):
    original, calls = shard_writer.ShardWriter.write, []

    def write(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > samples:
            raise RuntimeError("simulated crash while writing")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(shard_writer.ShardWriter, "write", write)


@pytest.mark.parametrize("workers", [1, 2])
def test_crash_mid_run_leaves_no_broken_output(tmp_path, source, monkeypatch, workers):
    out = tmp_path / "out"
    prepare.run([*source, "--out", out, "--shard-size", 1])
    before = snapshot(out)
    _crash_after(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare.run([*source, "--out", out, "--shard-size", 2, "--overwrite", "--workers", workers])
    assert snapshot(out) == before
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare.run([*source, "--out", tmp_path / "fresh", "--workers", workers])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "src"]  # no fresh/, no temporary folders


def test_shard_writer_only_exposes_finished_shards(tmp_path):
    writer = shard_writer.ShardWriter(tmp_path, "train", shard_size=2)
    for key in ("a", "b", "c"):
        writer.write(key, {"json": b"{}", "jpg": b"x"}, num_captions=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".train-000001.tar.partial", "train-000000.tar"]
    writer.abort()
    assert [path.name for path in tmp_path.iterdir()] == ["train-000000.tar"]
    with pytest.raises(ValueError, match="must not contain '.'"):
        writer.write("a.b", {"json": b"{}"}, num_captions=1)
