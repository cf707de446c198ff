"""Where neurobench keeps its files: everything lives under NEUROBENCH_HOME, and a name joined to a
root (a manifest file name, an archive member, a cache key) always stays inside that root.

The naming rule (`name_problem`): a relative, '/'-separated path whose parts are not '..'; no
absolute path, drive, backslash or NUL. Empty and '.' parts are dropped ('./a//b' is 'a/b').
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import HomeError, UnsafePathError

log = logging.getLogger(__name__)

_checked_homes: set[str] = set()
_warned_entries: set[str] = set()


def home() -> Path:
    """NEUROBENCH_HOME, default ~/.neurobench (created on first use). Raises HomeError, before any
    work is done, when it is a file, cannot be created or cannot be written."""
    raw = os.environ.get("NEUROBENCH_HOME", "")
    root = Path(raw).expanduser() if raw.strip() else Path.home() / ".neurobench"
    key = str(root)
    if key in _checked_homes and root.is_dir():
        return root
    _check_home(root)
    _checked_homes.add(key)
    return root


def _check_home(root: Path) -> None:
    fix = "set NEUROBENCH_HOME to a folder you can write (default ~/.neurobench)"
    if root.exists() and not root.is_dir():
        raise HomeError(f"NEUROBENCH_HOME={root} is a file, not a folder; {fix}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(f"NEUROBENCH_HOME={root} cannot be created ({exc.strerror or exc}); {fix}") from exc
    try:  # a real write, not os.access: root ignores permission bits, and read-only mounts are not modes
        with tempfile.TemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise HomeError(f"NEUROBENCH_HOME={root} is not writable ({exc.strerror or exc}); {fix}") from exc


def subdir(name: str) -> Path:
    """A folder of NEUROBENCH_HOME (created); it may be a symbolic link to another disk."""
    path = inside(home(), name, "NEUROBENCH_HOME folder", resolve=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dirs() -> list[Path]:
    """NEUROBENCH_MIRROR: local read-only mirrors, os.pathsep-separated, searched in order. An entry
    that is not an existing folder is skipped with a warning."""
    return existing_dirs("NEUROBENCH_MIRROR")


def existing_dirs(variable: str) -> list[Path]:
    """The folders listed in an os.pathsep-separated environment variable; an entry that is not an
    existing folder is skipped, with one warning per entry and process."""
    found = []
    for entry in os.environ.get(variable, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            found.append(path)
        elif f"{variable}={entry}" not in _warned_entries:
            _warned_entries.add(f"{variable}={entry}")
            what = "is not a folder" if path.exists() else "does not exist"
            log.warning("%s entry %s %s; skipping it", variable, entry, what)
    return found


def name_problem(name) -> str | None:
    """Why `name` may not be joined to a root (None when it may): see the module's naming rule."""
    if not isinstance(name, str) or not name:
        return "a name must be a non-empty string"
    if "\0" in name:
        return "a name may not contain a NUL character"
    if "\\" in name:
        return "a name uses '/' as its separator and may not contain '\\' (a separator on Windows)"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "a name must be a relative path, not an absolute one"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return "a name may not contain a '..' part (it would point outside its folder)"
    if not parts:
        return "a name must name something inside its folder"
    return None


def inside(root: Path, name: str, what: str = "name", resolve: bool = True) -> Path:
    """`root / name`, refused with UnsafePathError when `name` breaks the naming rule or (with
    `resolve`, for paths neurobench writes) resolves, through symbolic links, outside `root`."""
    problem = name_problem(name)
    if problem:
        raise UnsafePathError(f"{what} {name!r} is refused under {root}: {problem}")
    path = root.joinpath(*[p for p in name.split("/") if p not in ("", ".")])
    if resolve:
        real_root, real = root.resolve(), path.resolve()
        if real == real_root or not real.is_relative_to(real_root):
            raise UnsafePathError(f"{what} {name!r} is refused: {path} resolves to {real}, outside {real_root} "
                                  "(through a symbolic link)")
    return path
