"""Where neurobench keeps its files: everything lives under NEUROBENCH_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """NEUROBENCH_HOME, default ~/.neurobench (created on first use)."""
    root = Path(os.environ.get("NEUROBENCH_HOME", Path.home() / ".neurobench")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dirs() -> list[Path]:
    """NEUROBENCH_MIRROR: local read-only mirrors, os.pathsep-separated, searched in order."""
    raw = os.environ.get("NEUROBENCH_MIRROR", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
