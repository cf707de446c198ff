"""Registries of models, benchmarks and metrics, filled by decorators and entry points.

Built-in plugins register through the same entry-point group (`neurobench.plugins`) as
third-party packages, so there is one registration path for everybody.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .errors import RegistrationError, UnknownNameError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "neurobench.plugins"


@dataclass(frozen=True)
class Entry:
    """One registered thing: a factory plus what `neurobench list` shows about it."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _same_definition(a, b) -> bool:
    """True for one factory, or the same definition re-executed (a module imported twice)."""
    key = lambda f: (getattr(f, "__module__", None), getattr(f, "__qualname__", None))  # noqa: E731
    return a is b or key(a) == key(b)


class Registry:
    """Name -> Entry, with aliases and 'did you mean' on unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Callable[..., Any], description: str = "",
            replace: bool = False, **meta: Any) -> Entry:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise RegistrationError(f"{self.kind} names must be non-empty strings without surrounding spaces, got {name!r}")
        if not callable(factory):
            raise RegistrationError(f"{self.kind} {name!r}: the registered object must be callable, got {type(factory).__name__}")
        old = self._entries.get(name)
        if old is not None and not replace and not _same_definition(old.factory, factory):
            where = getattr(old.factory, "__module__", "?")
            raise RegistrationError(
                f"{self.kind} {name!r} is already registered (by {where}); "
                "choose another name or pass replace=True"
            )
        if not description:
            doc = (getattr(factory, "__doc__", None) or "").strip()
            description = doc.splitlines()[0] if doc else ""
        entry = Entry(name, factory, description, dict(meta))
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        discover_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            lowered = {k.lower(): k for k in known}
            if name.lower() in lowered:
                return self._entries[lowered[name.lower()]]
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            raise UnknownNameError(self.kind, name, known, close) from None

    def __contains__(self, name: str) -> bool:
        discover_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        discover_plugins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return [e.name for e in self]


models = Registry("model")
benchmarks = Registry("benchmark")
metrics = Registry("metric")


def _decorator(registry: Registry, name: str, description: str, meta: dict[str, Any]):
    def wrap(factory):
        registry.add(name, factory, description, **meta)
        return factory

    return wrap


def register_model(name: str, description: str = "", **meta: Any):
    """Decorator: `@register_model("mynet", family="custom")` over a function returning an Adapter."""
    return _decorator(models, name, description, meta)


def register_benchmark(name: str, description: str = "", **meta: Any):
    """Decorator over a function (or class) returning a Benchmark."""
    return _decorator(benchmarks, name, description, meta)


def register_metric(name: str, description: str = "", **meta: Any):
    """Decorator over a metric function or class."""
    return _decorator(metrics, name, description, meta)


_discovered = False
_discovering = False
plugin_errors: dict[str, str] = {}


def discover_plugins(force: bool = False) -> None:
    """Import every `neurobench.plugins` entry point once; a broken plugin is logged, not fatal."""
    global _discovered, _discovering
    if (_discovered and not force) or _discovering:
        return
    _discovering = True
    try:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, type):
                    obj()
            except Exception as exc:  # a third-party plugin must not break the others
                plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("neurobench plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
        _discovered = True
    finally:
        _discovering = False
