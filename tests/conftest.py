"""Test isolation: every test session gets its own NEUROBENCH_HOME; the shared data mirror is used
read-only through NEUROBENCH_MIRROR, as a user would set it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# numba's compiled kernels outlive the per-session NEUROBENCH_HOME (compiling them takes a minute)
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))


@pytest.fixture(autouse=True)
def neurobench_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.getbasetemp() / "neurobench_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("NEUROBENCH_HOME", str(home))
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if not os.environ.get("NEUROBENCH_MIRROR") and SHARED_DATA.is_dir():
        monkeypatch.setenv("NEUROBENCH_MIRROR", str(SHARED_DATA))
    return home


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """A home of the test's own, for tests that inspect the cache or store contents."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NEUROBENCH_HOME", str(home))
    return home


def kriegeskorte_available() -> bool:
    return (SHARED_DATA / "kriegeskorte2008" / "92_brainRDMs.mat").is_file()


needs_kriegeskorte = pytest.mark.skipif(
    not kriegeskorte_available(), reason="the kriegeskorte2008 mirror (../shared/data) is not present"
)


@pytest.fixture
def miniature(tmp_path, monkeypatch):
    """A per-test miniature mirror + manifest folder (see tests/miniature.py)."""
    from .miniature import Miniature

    return Miniature(tmp_path / "miniature", monkeypatch)


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip, saying why, where there is no CUDA device."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run `make gpu-check` on a machine with one)")
    for item in gpu:
        item.add_marker(skip)
