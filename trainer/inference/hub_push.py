"""Push a checkpoint folder (``best/``) or an ONNX export to a Hugging Face Hub model repository, with its model card.

Only the files a user needs are uploaded, named one by one (never the optimizer state, never a file reached through a
symbolic link): a checkpoint's ``CHECKPOINT_FILES``, an export's ``EXPORT_FILES``. A checkpoint's card is rendered
again from its facts with loading by name (``CaptionPipeline.from_pretrained("org/name")``); a checkpoint without a
card gets one. The token is huggingface_hub's (``HF_TOKEN`` or ``huggingface-cli login``).
"""
from __future__ import annotations

from pathlib import Path

from trainer.inference.hub import CARD_FILE, CHECKPOINT_FILES, REQUIRED_FILES, hub_module, is_repo_id
from trainer.inference.model_card import card_facts, read_card_data, render_card, train_config_of
from trainer.inference.onnx_search import EXPORT_CONFIG_FILE, EXPORT_FILES

LOAD_BY_NAME = """```python
from trainer.inference import CaptionPipeline
pipe = CaptionPipeline.from_pretrained("{name}")   # or revision="COMMIT" to pin it
print(pipe(["photo.jpg"], beam_size=3)[0].captions[0].text)
```
```bash
showattend-caption --checkpoint {name} photo.jpg --json
showattend-serve --checkpoint {name}
```"""


def upload_plan(folder: Path, repo_id: str) -> list[tuple[str, Path | bytes]]:
    """(name in the repository, local file or bytes) of everything pushed; ValueError naming what is wrong."""
    if not is_repo_id(repo_id):
        raise ValueError(f"--push-to-hub {repo_id!r}: expected a Hub repository id, ORG/NAME")
    is_export = (folder / EXPORT_CONFIG_FILE).is_file()
    names = EXPORT_FILES if is_export else tuple(CHECKPOINT_FILES)
    for name in (EXPORT_CONFIG_FILE, "vocab.json", "config.json") if is_export else REQUIRED_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"{folder} has no {name}: not a checkpoint or an export")
    plan: list[tuple[str, Path | bytes]] = []
    for name in names:
        path = folder / name
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link: not uploaded (copy the file into {folder})")
        if path.is_file() and not (name == CARD_FILE and not is_export):
            plan.append((name, path))
    if not is_export:
        facts = read_card_data(folder) or card_facts(folder, train_config_of(folder), None, None, None)
        plan.append((CARD_FILE, render_card(facts, LOAD_BY_NAME.format(name=repo_id)).encode("utf-8")))
    return plan


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Create ``repo_id`` if needed and commit the folder's files (``upload_plan``) in one commit; returns the
    commit's URL."""
    folder = Path(folder)
    plan = upload_plan(folder, repo_id)
    hub = hub_module()
    api = hub.HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    operations = [hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(source) if isinstance(source, Path)
                                         else source) for name, source in plan]
    commit = api.create_commit(repo_id, operations=operations, repo_type="model", revision=revision,
                               commit_message=f"showattend: upload {folder.name}")
    return str(getattr(commit, "commit_url", commit))
