"""Fault class 2: a verified data file that changes afterwards. The memo re-hashes a file whose
device, inode, size, mtime or ctime changed; `neurobench verify` re-hashes everything local and
catches even a change that keeps all five. Also: checksum fallback to an intact copy."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3

import numpy as np
import pytest

from neurobench.data import files as data
from neurobench.errors import ChecksumMismatchError

from .conftest import no_traceback
from .data_support import PLUGIN, forget_plugin, rewrite_in_place, tar_bytes

PAYLOAD = bytes(range(256)) * 64


def _verified(toy, payload=PAYLOAD, name="a.bin"):
    path = toy.put("toyset", name, payload)
    toy.publish("toyset", [toy.entry(name, payload)])
    assert data.resolve("toyset", name) == path
    return path


def test_a_file_rewritten_in_place_with_size_and_mtime_restored_is_refused(toy):
    path = _verified(toy)
    rewrite_in_place(path, PAYLOAD[::-1])  # same size, same inode, same mtime: only ctime moved
    with pytest.raises(ChecksumMismatchError, match="sha256 expected"):
        data.resolve("toyset", "a.bin")


def test_a_file_replaced_by_another_of_the_same_size_and_mtime_is_refused(toy, tmp_path):
    path = _verified(toy)
    other = tmp_path / "other.bin"
    other.write_bytes(PAYLOAD[::-1])
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)  # a new inode under the old name
    with pytest.raises(ChecksumMismatchError):
        data.resolve("toyset", "a.bin")


def _rdm_npy(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, values)
    return buf.getvalue()


def test_a_scrambled_npy_never_changes_a_stored_score(toy, cli, tmp_path):
    """The probe: a scrambled .npy (same size and mtime) changed a score from 0.3730 to 0.1795, stored.
    Now the second run fails with a typed error naming the file, and nothing more is stored."""
    angle = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    diff = np.abs(angle[:, None] - angle[None, :])
    rdm = np.minimum(diff, 2 * np.pi - diff)
    good = _rdm_npy(rdm)
    path = toy.put("faultset", "rdm.npy", good)
    toy.publish("faultset", [toy.entry("rdm.npy", good)])
    store = tmp_path / "results.sqlite"
    args = ("--plugin", PLUGIN, "score", "--model", "faults-pixels", "--benchmark", "faults.npy-rsa",
            "--store", store, "--quiet", "--device", "cpu")
    try:
        first = cli(*args)
        assert first.returncode == 0, first.stderr
        rows = sqlite3.connect(store).execute("select count(*) from scores").fetchone()[0]
        order = np.random.default_rng(0).permutation(24)
        rewrite_in_place(path, _rdm_npy(rdm[order][:, order]))  # a valid .npy, the same size
        second = cli(*args)
    finally:
        forget_plugin()
    err = no_traceback(second).replace("\n", "")
    assert "rdm.npy" in err and "sha256 expected" in err
    assert sqlite3.connect(store).execute("select count(*) from scores").fetchone()[0] == rows


def test_verify_catches_a_change_the_memo_cannot_see(toy, cli):
    path = _verified(toy)
    rewrite_in_place(path, PAYLOAD[::-1])
    data._mark_verified(path, data.load_manifest("toyset").file("a.bin").checksum)  # as if no stat field moved
    assert data.resolve("toyset", "a.bin") == path  # the memo trusts it: by design, the documented gap
    result = cli("verify", "toyset")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "corrupt" in result.stdout and "1 problem" in result.stderr
    with pytest.raises(ChecksumMismatchError):  # verify dropped the memo: the next use hashes and refuses
        data.resolve("toyset", "a.bin")


def test_verify_reports_ok_corrupt_and_missing_per_file(toy, cli):
    good, bad = b"good bytes", b"bad bytes!"
    toy.put("toyset", "good.bin", good)
    toy.put("toyset", "bad.bin", b"tampered!!")
    toy.publish("toyset", [toy.entry("good.bin", good), toy.entry("bad.bin", bad), toy.entry("gone.bin", b"x")])
    from neurobench.data.audit import verify_local

    report = verify_local({"toyset": None})
    assert {c.file: c.status for c in report.checks} == {"good.bin": "ok", "bad.bin": "corrupt", "gone.bin": "missing"}
    named = cli("verify", "toyset")
    assert named.returncode == 1 and "2 problem(s)" in named.stderr
    assert all(word in named.stdout for word in ("ok", "corrupt", "missing", "good.bin", "bad.bin", "gone.bin"))
    toy.put("toyset", "bad.bin", bad)
    everything = cli("verify")  # without names: every local copy; absent files are only counted
    assert everything.returncode == 0 and "files of these datasets have no local copy" in everything.stderr


def test_verify_checks_unpacked_archives_file_by_file(toy, cli):
    blob = tar_bytes({"inner/a.txt": b"alpha", "inner/b.txt": b"beta"})
    toy.put("toyset", "set.tar.gz", blob)
    toy.publish("toyset", [toy.entry("set.tar.gz", blob)])
    folder = data.unpack("toyset", "set.tar.gz")
    assert cli("verify", "toyset").returncode == 0
    (folder / "inner" / "b.txt").write_bytes(b"BETA")
    result = cli("verify", "toyset")
    assert result.returncode == 1 and "inner/b.txt changed" in result.stdout.replace("\n", " ").replace("│", "")
    assert (data.unpack("toyset", "set.tar.gz") / "inner" / "b.txt").read_bytes() == b"beta"  # unpacked again


def test_a_corrupt_cache_copy_falls_back_to_an_intact_mirror_copy(toy, cli, caplog):
    """Worked before (checksum fallback): kept as a regression test, through the API and the CLI."""
    mirror_copy = toy.put("toyset", "a.bin", PAYLOAD)
    toy.publish("toyset", [toy.entry("a.bin", PAYLOAD)])
    cached = data.cache_path("toyset", "a.bin")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD[::-1])
    assert data.resolve("toyset", "a.bin") == mirror_copy
    assert "not using corrupt copy" in caplog.text and str(cached) in caplog.text
    result = cli("fetch", "toyset")
    assert result.returncode == 0 and str(mirror_copy) in result.stdout.replace("\n", "")
    assert hashlib.sha256(mirror_copy.read_bytes()).hexdigest() == data.load_manifest("toyset").file("a.bin").digest
    no_traceback(cli("fetch", "nosuchset"))
