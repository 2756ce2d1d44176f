"""Hugging Face ``datasets`` reader: a dataset saved with ``save_to_disk`` (Dataset or DatasetDict), or anything
``datasets.load_dataset`` opens: a Hub name (from the local cache when ``HF_DATASETS_OFFLINE=1``) or a local folder
of parquet / JSON / CSV files or images (``--dataset imagefolder --data-dir DIR``).

``datasets`` is imported only here, and only when this source is used (it takes seconds to import)."""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from .common import (
    DataFormatError,
    Record,
    as_caption_list,
    check_split_name,
    image_id_or,
    parse_mapping,
)
from .fraction_splits import add_fraction_arguments, assign_fraction_splits
from .image_root import ImageRoot
from .source import Source


def import_datasets():
    """The ``datasets`` package, or a one-line error saying how to install it (a training machine may lack it)."""
    try:
        import datasets
    except ImportError as error:
        raise DataFormatError(f"prepare hf needs the Hugging Face `datasets` package ({error}): "
                              "pip install 'showattend[hf]'") from None
    return datasets


_DEFAULT_SPLIT_NAMES = {"validation": "val", "valid": "val", "dev": "val"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True,
                        help="folder written by Dataset(Dict).save_to_disk, or a name/folder for datasets.load_dataset")
    parser.add_argument("--dataset-config", default=None, help="load_dataset: configuration name")
    parser.add_argument("--data-dir", type=Path, default=None, help="load_dataset: data_dir (e.g. for imagefolder)")
    parser.add_argument("--revision", default=None, help="load_dataset: Hub revision (branch, tag or commit)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="load_dataset: cache folder (default HF's)")
    parser.add_argument("--image-column", default="image", help="Image feature (PIL) or string path column")
    parser.add_argument("--caption-column", default="caption", help="string or list-of-strings caption column")
    parser.add_argument("--id-column", default=None, help="image id column (else SPLIT_ROWINDEX)")
    parser.add_argument("--split-column", default=None, help="split column for a single Dataset (else fractions)")
    parser.add_argument("--split-names", nargs="*", default=[], metavar="OURS=THEIRS",
                        help="DatasetDict split mapping, e.g. val=validation (default maps validation/dev -> val)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder that relative paths in a string image column start from (default: --dataset)")
    add_fraction_arguments(parser)


def input_paths(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Files and folders this source reads, by flag (``--out`` must stay apart from them)."""
    dataset = [Path(args.dataset)] if Path(args.dataset).exists() else []
    return {"--dataset": dataset, "--images": [args.images] if args.images is not None else [],
            "--data-dir": [args.data_dir] if args.data_dir is not None else []}


def _image_at(dataset: Any, column: str, index: int, base: ImageRoot, where: str) -> str | bytes:
    """Encoded bytes of one row's image (or its file path when the dataset stores only paths)."""
    value = dataset[index][column]
    if isinstance(value, str):
        return base.resolve(value, where)
    if isinstance(value, dict) and value.get("bytes"):
        return value["bytes"]
    if isinstance(value, dict) and value.get("path"):
        return base.resolve(value["path"], where)
    return b""  # no image at all: reported as a zero-byte image


def _split_records(dataset: Any, name: str, args: argparse.Namespace, where: str) -> list[Record]:
    datasets = import_datasets()

    columns = [args.caption_column] + [c for c in (args.id_column, args.split_column) if c]
    missing = [c for c in [args.image_column, *columns] if c not in dataset.column_names]
    if missing:
        raise DataFormatError(f"{where}: no column(s) {', '.join(map(repr, missing))} "
                              f"(columns: {', '.join(dataset.column_names)})")
    feature = dataset.features[args.image_column]
    if isinstance(feature, datasets.Image):
        images = dataset.select_columns([args.image_column]).cast_column(args.image_column, datasets.Image(decode=False))
    elif getattr(feature, "dtype", None) in ("string", "large_string"):
        images = dataset.select_columns([args.image_column])
    else:
        raise DataFormatError(f"{where}: column {args.image_column!r} must be an Image feature or string paths, "
                              f"got {feature}")
    folder = args.images or args.data_dir or (Path(args.dataset) if Path(args.dataset).is_dir() else Path.cwd())
    base = ImageRoot(folder, args.allow_images_outside)
    records, index = [], 0
    for batch in dataset.select_columns(columns).iter(batch_size=1000):
        for row in range(len(batch[args.caption_column])):
            row_where = f"{where}[{index}]"
            captions = as_caption_list(batch[args.caption_column][row], f"{row_where}[{args.caption_column!r}]")
            image_id = image_id_or(batch[args.id_column][row] if args.id_column else None, f"{name or 'row'}_{index:07d}")
            split = name
            if args.split_column:
                split = check_split_name(batch[args.split_column][row], f"{row_where}[{args.split_column!r}]")
            image = partial(_image_at, images, args.image_column, index, base, f"{row_where}[{args.image_column!r}]")
            records.append(Record(image_id, split, captions, image, row_where))
            index += 1
    return records


def _saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file()


def _load(args: argparse.Namespace):
    """``load_from_disk`` for a saved folder, else ``load_dataset`` (which honours the cache and offline mode)."""
    import datasets

    folder = Path(args.dataset)
    if _saved_to_disk(folder):
        try:
            return datasets.load_from_disk(str(folder))
        except (FileNotFoundError, ValueError, KeyError) as error:
            raise DataFormatError(f"{folder}: cannot load with datasets.load_from_disk: {error}") from None
    options = {key: value for key, value in {"data_dir": args.data_dir and str(args.data_dir),
                                             "revision": args.revision,
                                             "cache_dir": args.cache_dir and str(args.cache_dir)}.items() if value}
    try:
        return datasets.load_dataset(args.dataset, args.dataset_config, **options)
    except Exception as error:  # noqa: BLE001 - datasets raises many types (offline, missing, bad files): one line
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataFormatError(f"--dataset {args.dataset}: not a save_to_disk folder, and datasets.load_dataset "
                              f"failed: {first_line}") from None


def read(args: argparse.Namespace) -> tuple[list[Record], list[dict]]:
    """Records of every split (DatasetDict) or of the single Dataset (split column or fractions)."""
    datasets = import_datasets()

    loaded = _load(args)
    if isinstance(loaded, datasets.DatasetDict):
        ours_by_theirs = {theirs: ours for ours, theirs in parse_mapping(args.split_names, "--split-names").items()}
        records = []
        for theirs, dataset in loaded.items():
            ours = ours_by_theirs.get(theirs, _DEFAULT_SPLIT_NAMES.get(theirs, theirs))
            split = check_split_name(ours, f"{args.dataset}: split {theirs!r}")
            records += _split_records(dataset, split, args, f"{args.dataset}[{theirs!r}]")
        return records, []
    records = _split_records(loaded, "", args, str(args.dataset))
    if not args.split_column:
        splits = assign_fraction_splits([r.image_id for r in records], args.val_fraction, args.test_fraction)
        for record in records:
            record.split = splits[record.image_id]
    return records, []


SOURCE = Source("Hugging Face datasets folder written by save_to_disk", add_arguments, input_paths, read)
