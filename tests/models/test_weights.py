"""WeightSource: the one downloadable-weights class (hub file, hub snapshot folder, URL)."""

import hashlib

import pytest
import torch

from neurobench.errors import CheckpointError, InvalidInputError
from neurobench.models.weights import VerifiedHubWeights, WeightSource

BLOB = b"weights bytes"
SHA = hashlib.sha256(BLOB).hexdigest()


def _url_source(prefix: str) -> WeightSource:
    return WeightSource(f"net-{prefix}.pth", url=f"https://example.org/net-{prefix}.pth", cache="torchvision",
                        sha256="file-name", recheck=True)


@pytest.fixture
def online(monkeypatch):
    downloads = []

    def download(url, dst, hash_prefix=None, progress=True):
        downloads.append(url)
        with open(dst, "wb") as fh:
            fh.write(BLOB)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    monkeypatch.delenv("NEUROBENCH_OFFLINE", raising=False)
    return downloads


def test_url_source_is_checked_against_its_file_name(online, fresh_home):
    src = _url_source(SHA[:8])
    assert src.cached_path() is None
    path = src.fetch()
    assert path == fresh_home / "torchvision" / src.filename and path.read_bytes() == BLOB
    assert src.fetch_verified() == (path, SHA) and len(online) == 1  # the cached copy, re-hashed
    path.write_bytes(b"swapped")
    with pytest.raises(CheckpointError, match=f"corrupt: sha256 expected {SHA} .recorded.*got {hashlib.sha256(b'swapped').hexdigest()}"):
        src.fetch()
    assert not path.exists()  # never used, and gone: the next fetch downloads it again


def test_url_download_that_does_not_match_is_deleted(online, fresh_home):
    src = _url_source("0123abcd")
    with pytest.raises(CheckpointError, match="sha256 does not start with 0123abcd.*deleted"):
        src.fetch()
    assert src.cached_path() is None


def test_offline_message_names_the_alternatives(fresh_home):
    with pytest.raises(CheckpointError) as info:
        _url_source(SHA[:8]).fetch()
    msg = str(info.value)
    assert "NEUROBENCH_OFFLINE" in msg and "`neurobench fetch`" in msg
    assert "`--weights PATH` to a local copy of net-" in msg and "`--weights random`" in msg


def test_verified_copy_needs_no_network_until_it_changes(monkeypatch, fresh_home, tmp_path):
    cached = tmp_path / "tau_1.0.pt"
    cached.write_bytes(BLOB)
    src = VerifiedHubWeights("org/repo", "tau_1.0.pt")
    monkeypatch.setattr(WeightSource, "cached_path", lambda self: cached)
    with pytest.raises(CheckpointError, match="NEUROBENCH_OFFLINE is set, and the cached copy is not verified"):
        src.fetch()  # no record, no sha256 in a blob name, offline: it cannot be verified
    src._record(cached, SHA)
    assert src.fetch_verified() == (cached, SHA)  # offline (the tests' default): the record suffices
    cached.write_bytes(b"swapped")
    with pytest.raises(CheckpointError, match="corrupt.*recorded when it was downloaded and verified"):
        src.fetch()
    assert not cached.exists()


def test_a_source_needs_one_location_and_a_known_sha256_source():
    with pytest.raises(InvalidInputError, match="exactly one of repo_id"):
        WeightSource("w.pt")
    with pytest.raises(InvalidInputError, match="sha256 must be one of"):
        WeightSource("w.pt", repo_id="org/repo", sha256="trust-me")
    with pytest.raises(CheckpointError, match="no sha256 prefix"):
        WeightSource("w.pth", url="https://example.org/w.pth", sha256="file-name", recheck=True)._name_prefix()
