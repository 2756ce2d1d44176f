"""Sharing by name: ``--checkpoint ORG/NAME`` and ``CaptionPipeline.from_pretrained`` resolve a Hugging Face Hub
repository through huggingface_hub, offline, from a cache laid out as huggingface_hub lays it out
(``models--org--name/{refs/main, snapshots/REV/FILE -> ../../blobs/HASH, blobs}``); a local folder wins; what the
cache holds is checked like any checkpoint. The push is checked by what is handed to ``HfApi``."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.inference import hub
from trainer.inference.hub import CHECKPOINT_FILES, resolve_checkpoint

REPO = Path(__file__).resolve().parents[1]
REPO_ID = "someone/tiny-captioner"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def add_snapshot(cache: Path, repo_id: str, commit: str, files: dict[str, Path], refs: tuple[str, ...] = ()) -> Path:
    """Lay ``files`` out as huggingface_hub caches a downloaded snapshot; ``refs`` (e.g. main) point at it."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "blobs").mkdir(exist_ok=True)
    for name, source in files.items():
        blob = folder / "blobs" / hashlib.sha256(f"{commit}/{name}".encode()).hexdigest()
        if not blob.exists():
            os.link(source, blob) if source.stat().st_dev == blob.parent.stat().st_dev else shutil.copyfile(source, blob)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    for ref in refs:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def offline_hub(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def checkpoint_files(checkpoint: Path) -> dict[str, Path]:
    return {name: checkpoint / name for name in CHECKPOINT_FILES if (checkpoint / name).is_file()}


def test_a_name_resolves_to_its_cached_snapshot_at_main_or_a_pinned_revision(tiny_checkpoint, tmp_path, offline_hub):
    checkpoint = tiny_checkpoint[0]
    older = add_snapshot(tmp_path, REPO_ID, COMMIT_A, checkpoint_files(checkpoint), refs=("v1",))
    newer = add_snapshot(tmp_path, REPO_ID, COMMIT_B, checkpoint_files(checkpoint), refs=("main",))
    assert resolve_checkpoint(REPO_ID, cache_dir=tmp_path) == newer
    assert resolve_checkpoint(REPO_ID, revision=COMMIT_A, cache_dir=tmp_path) == older
    assert resolve_checkpoint(REPO_ID, revision="v1", cache_dir=tmp_path) == older
    with pytest.raises(FileNotFoundError, match="not a local directory, and as a Hub repository at revision 'v2'"):
        resolve_checkpoint(REPO_ID, revision="v2", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="'someone/unknown' is not a local directory"):
        resolve_checkpoint("someone/unknown", cache_dir=tmp_path)


def test_a_local_folder_wins_over_a_hub_name(tiny_checkpoint, tmp_path, monkeypatch, offline_hub):
    add_snapshot(tmp_path / "cache", REPO_ID, COMMIT_A, checkpoint_files(tiny_checkpoint[0]), refs=("main",))
    monkeypatch.chdir(tmp_path)
    local = Path(REPO_ID)
    local.mkdir(parents=True)
    assert resolve_checkpoint(REPO_ID, cache_dir=tmp_path / "cache") == local
    assert resolve_checkpoint("not/a/name", cache_dir=tmp_path / "cache") == Path("not/a/name")  # loader says why


def test_cached_files_are_checked_like_any_checkpoint(tiny_checkpoint, tmp_path, monkeypatch, offline_hub):
    files = checkpoint_files(tiny_checkpoint[0])
    without_vocab = {name: path for name, path in files.items() if name != "vocab.json"}
    add_snapshot(tmp_path, "someone/no-vocab", COMMIT_A, without_vocab, refs=("main",))
    with pytest.raises(ValueError, match="has no vocab.json"):
        resolve_checkpoint("someone/no-vocab", cache_dir=tmp_path)

    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    snapshot = add_snapshot(tmp_path, "someone/link-out", COMMIT_A, files, refs=("main",))
    (snapshot / "config.json").unlink()
    (snapshot / "config.json").symlink_to(outside)
    with pytest.raises(ValueError, match="config.json is not a file inside its cache folder"):
        resolve_checkpoint("someone/link-out", cache_dir=tmp_path)

    add_snapshot(tmp_path, "someone/big", COMMIT_A, files, refs=("main",))
    monkeypatch.setitem(hub.CHECKPOINT_FILES, "model.safetensors", 1000)
    with pytest.raises(ValueError, match=r"model.safetensors is [\d,]+ bytes, more than the 1,000 accepted"):
        resolve_checkpoint("someone/big", cache_dir=tmp_path)


def test_caption_and_from_pretrained_load_by_name_offline(tiny_checkpoint, tmp_path):
    checkpoint, _, images = tiny_checkpoint
    add_snapshot(tmp_path, REPO_ID, COMMIT_A, checkpoint_files(checkpoint), refs=("main",))
    image = sorted(images.glob("*.jpg"))[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    by_name = subprocess.run([sys.executable, "-m", "trainer.caption", "--checkpoint", REPO_ID, str(image)],
                             capture_output=True, text=True, env=env, timeout=300)
    by_folder = subprocess.run([sys.executable, "-m", "trainer.caption", "--checkpoint", str(checkpoint), str(image)],
                               capture_output=True, text=True, env=env, timeout=300)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == by_folder.stdout and by_name.stdout.strip()
    missing = subprocess.run([sys.executable, "-m", "trainer.caption", "--checkpoint", "someone/missing", str(image)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: checkpoint 'someone/missing' is not a local directory, and as a Hub")


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records what it is handed."""

    calls: list = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def create_commit(self, repo_id, operations, **kwargs):
        self.calls.append(("create_commit", repo_id, operations, kwargs))
        return "https://huggingface.co/someone/tiny-captioner/commit/0"


def test_push_hands_the_checkpoint_files_and_a_card_to_the_client(tiny_checkpoint, tmp_path, monkeypatch):
    import huggingface_hub

    from trainer.export import main as export_main

    best = tmp_path / "best"
    shutil.copytree(tiny_checkpoint[0], best)
    (best / "optimizer.safetensors").write_bytes(b"optimizer state: never uploaded")
    RecordingHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    assert export_main(["--checkpoint", str(best), "--push-to-hub", REPO_ID, "--private"]) == 0

    (create, repo, options), (commit, commit_repo, operations, _) = RecordingHfApi.calls
    assert (create, repo, options["private"], commit, commit_repo) == ("create_repo", REPO_ID, True, "create_commit", REPO_ID)
    uploaded = {operation.path_in_repo: operation.path_or_fileobj for operation in operations}
    assert sorted(uploaded) == ["README.md", "config.json", "model.safetensors", "trainer_state.json", "vocab.json"]
    for name in ("config.json", "model.safetensors", "trainer_state.json", "vocab.json"):
        assert uploaded[name] == str(best / name)
    card = uploaded["README.md"].decode() if isinstance(uploaded["README.md"], bytes) else uploaded["README.md"].read().decode()
    assert f'CaptionPipeline.from_pretrained("{REPO_ID}")' in card and "## Card data" in card

    (best / "vocab.json").unlink()
    (best / "vocab.json").symlink_to(tiny_checkpoint[0] / "vocab.json")
    with pytest.raises(SystemExit, match="vocab.json is a symbolic link: not uploaded"):
        export_main(["--checkpoint", str(best), "--push-to-hub", REPO_ID])
    with pytest.raises(SystemExit, match="expected a Hub repository id"):
        export_main(["--checkpoint", str(best), "--push-to-hub", "../etc"])


def test_an_export_is_pushed_with_its_own_files_only(tmp_path):
    from trainer.inference.hub_push import upload_plan
    from trainer.inference.onnx_search import EXPORT_FILES

    for name in (*EXPORT_FILES, "notes.txt"):
        (tmp_path / name).write_text(name)
    plan = upload_plan(tmp_path, REPO_ID)
    assert [name for name, _ in plan] == list(EXPORT_FILES)
    assert all(source == tmp_path / name for name, source in plan)


def test_evaluate_by_name_never_writes_into_the_hub_cache(tiny_checkpoint, tmp_path, monkeypatch, offline_hub):
    import huggingface_hub.constants

    from trainer.evaluate_checkpoint import main as evaluate_main

    checkpoint, data, _ = tiny_checkpoint
    add_snapshot(tmp_path, REPO_ID, COMMIT_A, checkpoint_files(checkpoint), refs=("main",))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(SystemExit, match="is a Hub snapshot: give --out"):
        evaluate_main(["--checkpoint", REPO_ID, "--data", str(data)])
    assert sorted(path.name for path in (tmp_path / "models--someone--tiny-captioner" / "snapshots" / COMMIT_A).iterdir()) \
        == sorted(checkpoint_files(checkpoint))


def test_serve_loads_a_checkpoint_by_name_offline(tiny_checkpoint, tmp_path):
    from serve_process import serving

    from trainer.inference import CaptionPipeline

    checkpoint, _, images = tiny_checkpoint
    add_snapshot(tmp_path, REPO_ID, COMMIT_A, checkpoint_files(checkpoint), refs=("main",))
    image = sorted(images.glob("*.jpg"))[0]
    with serving(REPO_ID, "--revision", COMMIT_A, env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}) as server:
        status, answer, _ = server.caption(image.read_bytes(), "image/jpeg")
    assert status == 200
    assert answer["captions"][0]["text"] == CaptionPipeline.from_checkpoint(checkpoint)([image])[0].captions[0].text
