"""Fault class 1: names that would resolve outside their root (manifest file names, dataset names,
mirror reads, archive members, weights files). Each is refused by name, with nothing written
outside NEUROBENCH_HOME."""

from __future__ import annotations

import hashlib

import pytest

from neurobench.data import files as data
from neurobench.errors import InvalidInputError, ManifestError, NeurobenchError, UnsafePathError

from .conftest import no_traceback
from .data_support import tar_bytes, tree, zip_bytes

PAYLOAD = b"attacker-chosen bytes\n"


@pytest.mark.parametrize("name, rule", [
    ("../../../victim.txt", "'..'"),
    ("a/../../victim.txt", "'..'"),
    ("/tmp/victim.txt", "absolute"),
    ("..\\..\\victim.txt", "'\\\\'"),
    ("C:/victim.txt", "absolute"),
])
def test_an_escaping_manifest_name_is_refused_when_the_manifest_is_parsed(toy, name, rule):
    path = toy.publish("toyset", [toy.entry(name, PAYLOAD)])
    with pytest.raises(ManifestError) as info:
        data.load_manifest("toyset")
    msg = str(info.value)
    assert str(path) in msg and repr(name) in msg and rule.strip("'").replace("\\\\", "\\") in msg


@pytest.mark.parametrize("escape", ["relative", "absolute"])
def test_fetch_of_an_escaping_name_exits_with_an_error_and_overwrites_nothing(toy, faulty_server, cli,
                                                                              monkeypatch, escape):
    """The probe: `neurobench fetch` exited 0 after overwriting a user file outside the home."""
    victim = toy.root / "outside" / "victim.txt"
    victim.parent.mkdir()
    victim.write_bytes(b"the user's own file\n")
    faulty_server.files["/victim"] = PAYLOAD
    name = "../../../outside/victim.txt" if escape == "relative" else str(victim)
    toy.publish("toyset", [toy.entry(name, PAYLOAD, url=faulty_server.url("/victim"))])
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    before = tree(toy.root, skip=toy.home)
    err = no_traceback(cli("fetch", "toyset"))
    assert "refused" in err and "victim.txt" in err
    assert victim.read_bytes() == b"the user's own file\n"
    assert tree(toy.root, skip=toy.home) == before  # nothing written outside the home
    assert faulty_server.log == []  # refused before any download


def test_mirror_reads_do_not_follow_dotdot_out_of_the_mirror(toy, cli):
    secret = toy.root / "secret.bin"  # next to the mirror, not in it
    secret.write_bytes(PAYLOAD)
    toy.publish("toyset", [toy.entry("../secret.bin", PAYLOAD)])
    with pytest.raises(ManifestError, match="'..'"):
        data.resolve("toyset", "../secret.bin")
    no_traceback(cli("fetch", "toyset"))


def test_dataset_names_are_single_folder_names(toy):
    (toy.root / "toyset.toml").write_text('name = "toyset"\n')  # outside the manifest folder
    for name in ("../toyset", "..", "a/b", "/etc/passwd", ""):
        with pytest.raises(UnsafePathError, match="dataset name"):
            data.load_manifest(name)
    with pytest.raises(UnsafePathError):
        data.cache_path("../../x", "f")


@pytest.mark.parametrize("archive, members", [
    ("evil.zip", {"../../escape.txt": b"x"}),
    ("abs.zip", {"/tmp/escape-abs.txt": b"x"}),
    ("evil.tar.gz", {"../../escape.txt": b"x"}),
    ("abs.tar", {"/tmp/escape-abs.txt": b"x"}),
])
def test_archive_members_outside_the_folder_are_refused(toy, archive, members):
    """Worked before (members checked, tar's data filter): kept as a regression test."""
    blob = zip_bytes(members) if archive.endswith(".zip") else tar_bytes(members, "w" if archive.endswith(".tar")
                                                                          else "w:gz")
    toy.put("toyset", archive, blob)
    toy.publish("toyset", [toy.entry(archive, blob)])
    before = tree(toy.root, skip=toy.home)
    with pytest.raises(NeurobenchError, match="outside|refused|absolute"):
        data.unpack("toyset", archive)
    assert tree(toy.root, skip=toy.home) == before
    assert not data.cache_path("toyset", archive + ".contents").exists()
    assert not list(data.cache_path("toyset", "").glob("*.tmp"))


def test_a_tar_symlink_out_of_the_folder_is_refused(toy, tmp_path):
    blob = tar_bytes({}, "w", links={"link": str(tmp_path / "outside")})
    toy.put("toyset", "links.tar", blob)
    toy.publish("toyset", [toy.entry("links.tar", blob)])
    with pytest.raises(NeurobenchError, match="link"):
        data.unpack("toyset", "links.tar")
    assert not (tmp_path / "outside").exists()


def test_weights_file_names_stay_in_their_cache():
    from neurobench.models.weights import WeightSource

    digest = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(InvalidInputError, match="'..'"):
        WeightSource(f"../../net-{digest[:8]}.pth", url="https://example.org/net.pth", sha256="file-name")
