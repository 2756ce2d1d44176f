"""``Registry``: the names of one kind of extension (LR schedules, dataset sources, trackers) and what each stands for.

The config's allowed values and the command line's choices are read from a registry when they are checked, so one
``register`` makes a new piece selectable by name everywhere (docs/extending.md)."""
from __future__ import annotations

from typing import Callable, Mapping, TypeVar

Entry = TypeVar("Entry")


class Registry(dict):
    """Name -> entry of one ``kind`` (used in messages: "LR schedule"); a name is registered once."""

    def __init__(self, kind: str, entries: Mapping[str, object] | None = None):
        super().__init__()
        self.kind = kind
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: Entry | None = None) -> Entry | Callable[[Entry], Entry]:
        """Add ``entry`` as ``name`` and return it; without ``entry``, a decorator that does so. A name already
        registered, or one that is not a plain word (letters, digits, ``_``, ``-``), is a ValueError."""
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            raise ValueError(f"{self.kind} name {name!r} must be a word of letters, digits, '_' and '-'")
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self[name]!r})")
        if entry is None:
            return lambda decorated: self.register(name, decorated)
        self[name] = entry
        return entry

    def lookup(self, name: str, where: str) -> Entry:
        """The entry of ``name``; a ValueError naming ``where`` (the config key or flag) and the choices when it is
        not registered."""
        if name not in self:
            raise ValueError(f"{where}: {name!r} is not one of {list(self)}")
        return self[name]
