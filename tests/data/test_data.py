"""Data manifests: cache -> mirror -> download, sha256 on everything, honest errors offline."""

import hashlib
import http.server
import threading
from functools import partial

import pytest

from neurobench.data import files as data
from neurobench.errors import ChecksumMismatchError, DataUnavailableError, UnknownNameError

from ..conftest import needs_kriegeskorte


def test_manifest_fields():
    m = data.load_manifest("kriegeskorte2008")
    assert m.license and m.citation and m.description
    spec = m.file("92_brainRDMs.mat")
    assert spec.sha256 == "1743f90a15e895798a94318649e80e1123a7e5943a1703fa1dd7c31ea5780b7c"
    assert spec.url.startswith("https://")
    assert m.total_size == 3603779 + 224663


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="kriegeskorte2008"):
        data.load_manifest("kriegeskorte2009")


@needs_kriegeskorte
def test_resolves_from_mirror_in_place(fresh_home):
    path = data.resolve("kriegeskorte2008", "92_brainRDMs.mat")
    assert path.parent.name == "kriegeskorte2008" and "shared" in str(path)
    assert not (fresh_home / "data" / "kriegeskorte2008" / "92_brainRDMs.mat").exists()


@needs_kriegeskorte
def test_corrupt_cache_copy_is_never_used(fresh_home, caplog):
    cached = data.cache_path("kriegeskorte2008", "92_brainRDMs.mat")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage")
    path = data.resolve("kriegeskorte2008", "92_brainRDMs.mat")
    assert path != cached  # the intact mirror copy wins
    assert "not using corrupt copy" in caplog.text


def test_corrupt_only_copy_raises_with_both_hashes(fresh_home, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror" / "kriegeskorte2008"
    mirror.mkdir(parents=True)
    (mirror / "92_brainRDMs.mat").write_bytes(b"x" * 224663)
    monkeypatch.setenv("NEUROBENCH_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ChecksumMismatchError) as info:
        data.resolve("kriegeskorte2008", "92_brainRDMs.mat")
    msg = str(info.value)
    assert "1743f90a15e895798a94318649e80e1123a7e5943a1703fa1dd7c31ea5780b7c" in msg
    assert hashlib.sha256(b"x" * 224663).hexdigest() in msg


@needs_kriegeskorte
def test_truncated_copy_is_rejected(fresh_home, monkeypatch, tmp_path):
    from ..conftest import SHARED_DATA

    good = (SHARED_DATA / "kriegeskorte2008" / "92_brainRDMs.mat").read_bytes()
    mirror = tmp_path / "m" / "kriegeskorte2008"
    mirror.mkdir(parents=True)
    (mirror / "92_brainRDMs.mat").write_bytes(good[: len(good) // 2])
    monkeypatch.setenv("NEUROBENCH_MIRROR", str(tmp_path / "m"))
    with pytest.raises(ChecksumMismatchError, match="truncated"):
        data.resolve("kriegeskorte2008", "92_brainRDMs.mat")


def test_missing_offline_names_file_and_remedies(fresh_home, monkeypatch):
    monkeypatch.setenv("NEUROBENCH_MIRROR", "")
    with pytest.raises(DataUnavailableError) as info:
        data.resolve("kriegeskorte2008", "92_brainRDMs.mat")
    msg = str(info.value)
    assert "92_brainRDMs.mat" in msg and "neurobench fetch kriegeskorte2008" in msg and "NEUROBENCH_MIRROR" in msg


def test_verification_is_memoised_until_the_file_changes(fresh_home, monkeypatch, tmp_path):
    payload = b"hello neurobench"
    spec = data.FileSpec("f.bin", "http://unused", hashlib.sha256(payload).hexdigest(), len(payload))
    path = tmp_path / "f.bin"
    path.write_bytes(payload)
    data.verify(path, spec)
    calls = []
    real = data.digest_of
    monkeypatch.setattr(data, "digest_of", lambda p, alg="sha256": calls.append(p) or real(p, alg))
    data.verify(path, spec)  # unchanged: no rehash
    assert calls == []
    path.write_bytes(b"HELLO neurobench")  # same size, new content: hashed again and refused
    with pytest.raises(ChecksumMismatchError):
        data.verify(path, spec)
    assert calls == [path]


@pytest.fixture
def local_server(tmp_path):
    """A loopback HTTP server serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fake_manifest(monkeypatch, url, payload):
    spec = data.FileSpec("blob.bin", url, hashlib.sha256(payload).hexdigest(), len(payload))
    manifest = data.Manifest("toyset", "toy", "toy", "CC0", ("nobody",), (spec,))
    monkeypatch.setattr(data, "load_manifest", lambda name: manifest)
    return spec


def test_download_checks_sha256(fresh_home, monkeypatch, local_server):
    root, base = local_server
    payload = b"real bytes" * 100
    (root / "blob.bin").write_bytes(payload)
    _fake_manifest(monkeypatch, f"{base}/blob.bin", payload)
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    path = data.resolve("toyset", "blob.bin")
    assert path.read_bytes() == payload and path == data.cache_path("toyset", "blob.bin")


def test_download_with_wrong_content_is_discarded(fresh_home, monkeypatch, local_server):
    root, base = local_server
    (root / "blob.bin").write_bytes(b"tampered")
    _fake_manifest(monkeypatch, f"{base}/blob.bin", b"expected content")
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    with pytest.raises(ChecksumMismatchError):
        data.resolve("toyset", "blob.bin")
    assert not data.cache_path("toyset", "blob.bin").exists()


def test_unreachable_host_gives_actionable_error(fresh_home, monkeypatch):
    _fake_manifest(monkeypatch, "http://127.0.0.1:9/blob.bin", b"x")
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    monkeypatch.setenv("NEUROBENCH_MIRROR", "")
    monkeypatch.setattr("neurobench.data.download._BACKOFF_S", 0.0)
    with pytest.raises(DataUnavailableError, match="could not download"):
        data.resolve("toyset", "blob.bin")
