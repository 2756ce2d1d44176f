"""Reading a YAML config file as plain data: mappings, lists and scalars.

``yaml.SafeLoader`` already refuses ``!!python/object`` tags (it never builds objects); this loader also refuses
aliases (``*name``, and so ``<<: *name`` merge keys): a few lines of nested aliases ("billion laughs") expand into a
value too large to print or hash. A key given twice in one mapping (two ``train:`` sections, or ``lr`` twice in
one) is refused too: YAML would keep the last one without a word. Every problem is a one-line ValueError naming
the file, line and column."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _PlainDataLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not allowed in a config (write "
                                              f"the value out)", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: the base class names it
                break
            if seen is not None:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice (first on line "
                                                        f"{seen}); one value per key", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_yaml_file(path: Path) -> Any:
    """The YAML document in ``path`` (None when empty); ValueError ``PATH: line L, column C: problem``."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainDataLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}: line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where}: {problem}") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a config") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
