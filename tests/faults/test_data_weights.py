"""Fault class 7: cached model checkpoints. Every load checks the cached file against the sha256
recorded when it was downloaded and verified (re-hashed when its device, inode, size, mtime or
ctime changed, or always with `recheck`); a corrupt cached checkpoint is deleted and refused with
a CheckpointError naming the file and what to do."""

from __future__ import annotations

import hashlib

import pytest

from neurobench.errors import CheckpointError
from neurobench.models import weights as weights_mod
from neurobench.models.weights import WeightSource

from .conftest import no_traceback
from .data_support import PLUGIN, forget_plugin, rewrite_in_place

BLOB = bytes(range(256)) * 1024
SHA = hashlib.sha256(BLOB).hexdigest()


def test_a_corrupted_cached_checkpoint_is_refused_by_the_cli(cli, fresh_home, monkeypatch):
    """The probe: a cached checkpoint was never re-checked; a same-size corruption went unnoticed."""
    name = f"faults-net-{SHA[:8]}.pth"
    monkeypatch.setenv("FAULTS_WEIGHTS_FILE", name)
    cached = fresh_home / "faults-weights" / name
    cached.parent.mkdir()
    cached.write_bytes(BLOB)
    try:
        first = cli("--plugin", PLUGIN, "fetch", "faults-net")
        assert first.returncode == 0 and name in first.stdout
        rewrite_in_place(cached, BLOB[::-1])  # same size, same mtime
        err = no_traceback(cli("--plugin", PLUGIN, "fetch", "faults-net")).replace("\n", "")
    finally:
        forget_plugin()
    assert str(cached) in err and "corrupt" in err and "neurobench fetch" in err and "--weights PATH" in err
    assert not cached.exists()  # never used, and gone: the next fetch downloads it again


def _hub_cache(root, repo: str, filename: str, blob: bytes, revision: str = "0" * 40):
    """A Hugging Face cache entry as the hub client writes it: the file links to a blob named by its sha256."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "snapshots" / revision).mkdir(parents=True)
    blob_path = folder / "blobs" / hashlib.sha256(blob).hexdigest()
    blob_path.write_bytes(blob)
    (folder / "refs" / "main").write_text(revision)
    (folder / "snapshots" / revision / filename).symlink_to(f"../../blobs/{blob_path.name}")
    return folder / "snapshots" / revision / filename, blob_path


def test_a_corrupted_hub_blob_is_refused_offline(fresh_home):
    link, blob = _hub_cache(fresh_home / "hub", "org/repo", "w.pt", BLOB)
    src = WeightSource("w.pt", repo_id="org/repo")
    assert src.fetch_verified() == (link, SHA)  # offline: checked against the sha256 naming the blob
    rewrite_in_place(blob, BLOB[::-1])
    with pytest.raises(CheckpointError, match=r"at .*w\.pt are corrupt: sha256 expected " + SHA):
        src.fetch()
    assert not blob.exists() and not link.is_symlink()


def test_a_verified_checkpoint_is_hashed_again_only_when_its_state_changes(fresh_home, monkeypatch):
    _hub_cache(fresh_home / "hub", "org/repo", "w.pt", BLOB)
    calls = []
    real = weights_mod.sha256_of
    monkeypatch.setattr(weights_mod, "sha256_of", lambda path: calls.append(path) or real(path))
    src = WeightSource("w.pt", repo_id="org/repo")
    src.fetch()
    src.fetch()
    assert len(calls) == 1  # verified once, then remembered for the file's state
    strict = WeightSource("w.pt", repo_id="org/repo", recheck=True)
    strict.fetch()
    strict.fetch()
    assert len(calls) == 3  # recheck: hashed on every load
