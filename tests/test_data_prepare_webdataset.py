"""``prepare webdataset``: img2dataset-style shards (local and over HTTP) into our format, with hash splits, skipped
samples in stats.json, small JPEGs copied byte for byte and untrusted member names kept out of paths."""
import io
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from data_pipelines import image_conversion, prepare
from data_pipelines.sources.common import DataFormatError
from data_pipelines.sources.webdataset_shards import expand_braces, hash_split
from tests.remote_servers import http_server


def encoded(size: int, fmt: str, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, fmt)
    return buffer.getvalue()


def add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def status(value: str, caption: str | None = None) -> bytes:
    return json.dumps({"status": value, **({"caption": caption} if caption else {})}).encode()


SMALL_JPEG = encoded(32, "JPEG")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Two img2dataset-style shards: 5 good samples (jpg+txt+json, png+json caption, webp+txt, big jpg, sub/key),
    a failed download, a sample without caption, one without image, a symlink and a '../' member."""
    folder = tmp_path_factory.mktemp("img2dataset")
    with tarfile.open(folder / "00000.tar", "w") as tar:
        add(tar, "000000000.jpg", SMALL_JPEG)
        add(tar, "000000000.txt", b"a red square")
        add(tar, "000000000.json", status("success"))
        add(tar, "000000001.json", status("failed_to_download"))
        add(tar, "000000002.png", encoded(40, "PNG", (0, 0, 255)))
        add(tar, "000000002.json", status("success", "a blue square"))
        add(tar, "000000003.jpg", SMALL_JPEG)  # no caption at all
        link = tarfile.TarInfo("000000004.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        add(tar, "000000004.txt", b"a link, not an image")
    with tarfile.open(folder / "00001.tar", "w") as tar:
        add(tar, "000010000.webp", encoded(24, "WEBP", (0, 200, 0)))
        add(tar, "000010000.txt", b"a green square")
        add(tar, "000010001.jpg", encoded(128, "JPEG"))
        add(tar, "000010001.txt", b"a big red square")
        add(tar, "../000010002.jpg", SMALL_JPEG)
        add(tar, "../000010002.txt", b"a red square from above")
        add(tar, "000010003.txt", b"a caption without an image")
    return folder


def prepared(shards_pattern: str, out: Path) -> dict:
    prepare.run(["webdataset", "--shards", shards_pattern, "--out", out, "--image-size", 64, "--min-word-freq", 1,
                 "--workers", 1, "--val-fraction", 0.3, "--test-fraction", 0.3])
    return json.loads((out / "manifest.json").read_text())


def samples(out: Path) -> dict[str, dict]:
    """image_id -> {"jpg": bytes, "meta": dict, "split": str} of a prepared dataset."""
    found = {}
    for split, entry in json.loads((out / "manifest.json").read_text())["splits"].items():
        for name in entry["shards"]:
            with tarfile.open(out / name) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
            for member, payload in members.items():
                if member.endswith(".json"):
                    meta = json.loads(payload)
                    found[meta["image_id"]] = {"jpg": members[member[:-5] + ".jpg"], "meta": meta, "split": split}
    return found


def test_img2dataset_shards_become_our_format(shards, tmp_path):
    manifest = prepared(f"{shards}/{{00000..00001}}.tar", tmp_path / "out")
    found = samples(tmp_path / "out")
    assert sorted(found) == ["000000000", "000000002", "000010000", "000010001", "___000010002"]
    for key, sample in found.items():
        assert sample["split"] == hash_split(key.replace("___", "../"), 0.3, 0.3)
    assert sum(entry["images"] for entry in manifest["splits"].values()) == 5
    assert found["000000000"]["jpg"] == SMALL_JPEG  # within --image-size: copied, not re-encoded
    assert found["000000000"]["meta"]["captions"] == ["a red square"]
    assert found["000000002"]["meta"]["captions"] == ["a blue square"]
    with Image.open(io.BytesIO(found["000010001"]["jpg"])) as big:
        assert big.size == (64, 64)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    reasons = {entry["image_id"]: entry["reason"] for entry in stats["skipped"]}
    assert reasons == {"000000001": "download status not success", "000000003": "no caption (.txt or .json 'caption')",
                       "000000004": "no image member (.jpg / .jpeg / .png / .webp)",
                       "000010003": "no image member (.jpg / .jpeg / .png / .webp)"}
    assert not (tmp_path / "000010002.jpg").exists()


def test_shards_over_http_prepare_the_same_dataset(shards, tmp_path):
    prepared(f"{shards}/{{00000..00001}}.tar", tmp_path / "local")
    with http_server(shards) as (url, _):
        prepared(f"{url}/{{00000,00001}}.tar", tmp_path / "remote")
    remote, local = samples(tmp_path / "remote"), samples(tmp_path / "local")
    assert remote.keys() == local.keys()
    for key, sample in remote.items():  # the same but for where each came from
        assert sample["meta"].pop("source").startswith(url) and local[key]["meta"].pop("source").startswith(str(shards))
        assert sample == local[key]


def test_brace_expansion():
    assert expand_braces("s/{008..010}.tar") == ["s/008.tar", "s/009.tar", "s/010.tar"]
    assert expand_braces("{a,b}-{0..1}") == ["a-0", "a-1", "b-0", "b-1"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    for bad in ("{5..1}.tar", "{x}.tar", "{{0..1}}.tar", "{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}"):
        with pytest.raises(DataFormatError, match="--shards"):
            expand_braces(bad)


def test_small_jpegs_are_copied_only_when_asked(tmp_path):
    """The webdataset source turns copying on; every other source (the demo's Karpathy data too) re-encodes."""
    copied = image_conversion.convert_image(SMALL_JPEG, 64, 95, copy_small_jpegs=True)
    reencoded = image_conversion.convert_image(SMALL_JPEG, 64, 95)
    assert copied["jpg"] == SMALL_JPEG and reencoded["jpg"] != SMALL_JPEG
    assert copied["sha256"] == reencoded["sha256"]  # the duplicate check sees the input bytes either way
    parser = prepare.build_parser()

    def chosen(*argv):
        return prepare.copy_small_jpegs(parser.parse_args(argv))

    assert chosen("webdataset", "--shards", "x.tar", "--out", "o") is True
    assert chosen("webdataset", "--shards", "x.tar", "--out", "o", "--no-copy-small-jpegs") is False
    assert chosen("karpathy", "--json", "d.json", "--out", "o") is False
    assert chosen("karpathy", "--json", "d.json", "--out", "o", "--copy-small-jpegs") is True
