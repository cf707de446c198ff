"""Registries of models, benchmarks and metrics, filled by decorators and entry points.

Built-in plugins register through the same entry points as third-party packages, so there is one
registration path for everybody. Plugin modules are imported on demand:

- `neurobench.models`, `neurobench.benchmarks`, `neurobench.metrics`: each entry's *name* is an
  id or an fnmatch pattern (``"nsd.*"``, ``"toporesnet*"``) and its value the module that
  registers the ids it matches. Looking up one id imports only the modules whose pattern matches.
- `neurobench.plugins`: modules that declare nothing; imported when the whole registry is needed
  (iteration, `neurobench list`) or when no declaration claims an id.

Lookup of id X: a registered X is returned at once; otherwise the modules whose declared pattern
matches X are imported; if X is still unknown, every remaining plugin module is, so that an
unknown name gets "did you mean" suggestions over everything; then `UnknownNameError`. A plugin
that fails to import is logged and recorded in `plugin_errors` (module -> problem); it never
breaks the others.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import (
    NeurobenchError,
    PluginImportError,
    RegistrationError,
    RenamedError,
    UnknownNameError,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "neurobench.plugins"
DECLARATION_GROUPS = {"model": "neurobench.models", "benchmark": "neurobench.benchmarks",
                      "metric": "neurobench.metrics"}


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
    """Name -> Entry, with aliases and 'did you mean' on unknown names.

    A registry with a `group` fills itself from plugin modules on demand (module docstring); one
    without (a private registry) holds only what is added to it.
    """

    def __init__(self, kind: str, group: str | None = None):
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {}
        self._renamed: dict[str, tuple[str, str]] = {}  # old name -> (new name, why)

    def add(self, name: str, factory: Callable[..., Any], description: str = "",
            replace: bool = False, **meta: Any) -> Entry:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise RegistrationError(f"{self.kind} names must be non-empty strings without surrounding spaces, got {name!r}")
        if not callable(factory):
            raise RegistrationError(f"{self.kind} {name!r}: the registered object must be callable, got {type(factory).__name__}")
        if self.group and name not in self._entries:
            _import_declared(self.group, name)  # a plugin that claims the name registers first: clashes show now
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

    def rename(self, old: str, new: str, reason: str) -> None:
        """Refuse `old` from now on with a message naming `new` (not listed, never scored)."""
        self._renamed[old] = (new, reason)

    def _match(self, name: str, any_case: bool) -> Entry | None:
        entry = self._entries.get(name)
        if entry is None and any_case:
            lowered = {k.lower(): k for k in self._entries}
            entry = self._entries.get(lowered.get(name.lower(), ""))
        return entry

    def _find(self, name: str, any_case: bool) -> Entry | None:
        """The entry for `name`, importing the plugins that declare it, then all of them."""
        entry = self._entries.get(name)
        if entry is not None or not self.group:
            return entry or self._match(name, any_case)
        _import_declared(self.group, name)
        entry = self._match(name, any_case)
        if entry is None:
            discover_plugins()
            entry = self._match(name, any_case)
        return entry

    def get(self, name: str) -> Entry:
        entry = self._find(name, any_case=True)
        if entry is not None:
            return entry
        if name in self._renamed:
            raise RenamedError(self.kind, name, *self._renamed[name])
        known = sorted(self._entries)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        failed = {module: plugin_errors[module] for module in _declaring(self.group, name)
                  if module in plugin_errors} if self.group else {}
        if failed:
            raise PluginImportError(self.kind, name, known, close, failed)
        raise UnknownNameError(self.kind, name, known, close)

    def __contains__(self, name: str) -> bool:
        return self._find(name, any_case=False) is not None

    def __iter__(self) -> Iterator[Entry]:
        if self.group:
            discover_plugins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return [e.name for e in self]


models = Registry("model", DECLARATION_GROUPS["model"])
benchmarks = Registry("benchmark", DECLARATION_GROUPS["benchmark"])
metrics = Registry("metric", DECLARATION_GROUPS["metric"])


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


# ----------------------------------------------------------------------------------- plugins

plugin_errors: dict[str, str] = {}  # plugin module (entry-point value) -> why it failed to import
_entry_points: list[metadata.EntryPoint] | None = None  # every plugin entry point, all groups
_imported: set[str] = set()  # entry-point values already imported (or tried)
_importing = 0  # > 0 while a plugin module is being imported
_lock = threading.RLock()


def _plugin_entry_points() -> list[metadata.EntryPoint]:
    global _entry_points
    if _entry_points is None:
        every = metadata.entry_points()
        groups = (*DECLARATION_GROUPS.values(), ENTRY_POINT_GROUP)
        _entry_points = [ep for group in groups for ep in every.select(group=group)]
    return _entry_points


def _declaring(group: str | None, name: str) -> list[str]:
    """The modules whose declaration in `group` matches `name` (fnmatch, any case)."""
    low = name.lower()
    return list(dict.fromkeys(ep.value for ep in _plugin_entry_points()
                              if ep.group == group and fnmatch.fnmatchcase(low, ep.name.lower())))


def _import(ep: metadata.EntryPoint) -> None:
    """Import one plugin module once; a failure is recorded and logged, not raised."""
    global _importing
    if ep.value in _imported:
        return
    _imported.add(ep.value)
    _importing += 1
    try:
        obj = ep.load()
        if callable(obj) and not isinstance(obj, type):
            obj()
    except Exception as exc:  # a third-party plugin must not break the others
        plugin_errors[ep.value] = f"{type(exc).__name__}: {exc}"
        log.warning("neurobench plugin %s (%s) failed to load: %s", ep.value, ep.name, exc)
    finally:
        _importing -= 1


def _import_all(eps) -> None:
    with _lock:
        if _importing:  # a plugin looking names up while it is imported sees what is registered so far
            return
        for ep in eps:
            _import(ep)


def _import_declared(group: str, name: str) -> None:
    """Import the modules whose declaration in `group` matches `name`."""
    modules = set(_declaring(group, name)) - _imported
    if modules:
        _import_all([ep for ep in _plugin_entry_points() if ep.value in modules])


def load_plugin(spec: str) -> str | None:
    """Import a user's plugin: a module name or a .py file that registers models, benchmarks or
    metrics (`neurobench --plugin`). A plugin that raises while it is imported is recorded in
    `plugin_errors` under `spec` and logged, like a broken entry-point plugin, and the problem is
    returned (None: it loaded); the others keep working. A file or module that does not exist is
    a NeurobenchError (a wrong argument, not a broken plugin)."""
    if not spec.strip():
        raise NeurobenchError("--plugin needs a module name or the path of a .py file")
    path = Path(spec)
    is_file = spec.endswith(".py") or path.is_file()
    if is_file and not path.is_file():
        raise NeurobenchError(f"--plugin {spec}: no such file; give the path of a .py file or an importable module name")
    if not is_file and importlib.util.find_spec(spec.split(".")[0]) is None:
        raise NeurobenchError(f"--plugin {spec}: no module of that name is installed (and no such .py file); "
                              "give an importable module name or the path of a .py file")
    try:
        if is_file:
            mod_spec = importlib.util.spec_from_file_location(f"neurobench_user_plugin_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except Exception as exc:  # a user's plugin must not break neurobench
        problem = f"{type(exc).__name__}: {exc}"
        plugin_errors[spec] = problem
        log.info("neurobench plugin %s failed to load: %s", spec, problem)  # returned: the caller reports it
        return problem
    return None


def discover_plugins(force: bool = False) -> None:
    """Import every plugin module (all groups) not imported yet; a broken plugin is logged, not
    fatal. `force`: read the entry points again and retry every module."""
    global _entry_points
    if force:
        with _lock:
            _entry_points = None
            _imported.clear()
            plugin_errors.clear()
    _import_all(_plugin_entry_points())
