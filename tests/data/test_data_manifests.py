"""Manifest features for large releases: checksum algorithms, trust on first use, file groups,
expansion, local manifest overrides and archive unpacking."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from neurobench.data import files as data
from neurobench.errors import ChecksumMismatchError, NeurobenchError


def _manifest(folder, body, name="toyset"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(f'name = "{name}"\ntitle = "toy"\nlicense = "CC0"\n' + body)


@pytest.fixture
def toy(tmp_path, monkeypatch, fresh_home):
    mirror = tmp_path / "mirror" / "toyset"
    mirror.mkdir(parents=True)
    monkeypatch.setenv("NEUROBENCH_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("NEUROBENCH_MANIFESTS", str(tmp_path / "manifests"))
    return mirror, tmp_path / "manifests"


@pytest.mark.parametrize("alg", ["sha1", "md5", "sha256"])
def test_published_checksum_algorithms(toy, alg):
    mirror, manifests = toy
    (mirror / "a.bin").write_bytes(b"payload")
    good = hashlib.new(alg, b"payload").hexdigest()
    _manifest(manifests, f'[[files]]\nname = "a.bin"\nurl = "https://x.invalid/a"\n{alg} = "{good}"\n')
    assert data.resolve("toyset", "a.bin").read_bytes() == b"payload"
    assert data.load_manifest("toyset").file("a.bin").checksum == f"{alg}:{good}"
    (mirror / "a.bin").write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError, match=alg):
        data.resolve("toyset", "a.bin")


def test_trust_on_first_use_records_then_enforces(toy, caplog):
    mirror, manifests = toy
    (mirror / "a.bin").write_bytes(b"first")
    _manifest(manifests, '[[files]]\nname = "a.bin"\nurl = "https://x.invalid/a"\ntofu = true\n')
    with caplog.at_level("WARNING"):
        data.resolve("toyset", "a.bin")
    assert "trust on first use" in caplog.text
    assert data.recorded_digest("toyset", "a.bin") == hashlib.sha256(b"first").hexdigest()
    (mirror / "a.bin").write_bytes(b"changed")
    with pytest.raises(ChecksumMismatchError, match="recorded at first use"):
        data.resolve("toyset", "a.bin")


def test_a_file_needs_exactly_one_checksum_or_tofu(toy):
    _, manifests = toy
    _manifest(manifests, '[[files]]\nname = "a.bin"\nurl = "u"\n')
    with pytest.raises(NeurobenchError, match="tofu"):
        data.load_manifest("toyset")


def test_expand_and_groups(toy):
    _, manifests = toy
    _manifest(manifests, '[[files]]\nname = "subj{s}/run{r}.h5"\nurl = "https://x.invalid/subj{s}/run{r}.h5"\n'
                         'group = "subj{s}"\ntofu = true\nexpand = { s = ["01", "02"], r = [1, 2, 3] }\n')
    m = data.load_manifest("toyset")
    assert len(m.files) == 6
    assert [f.name for f in m.group("subj02")] == ["subj02/run1.h5", "subj02/run2.h5", "subj02/run3.h5"]
    assert m.file("subj01/run3.h5").url.endswith("subj01/run3.h5")
    with pytest.raises(NeurobenchError, match="subj01"):
        m.group("subj09")
    assert set(data.availability("toyset", ["subj01/run1.h5"])) == {"subj01/run1.h5"}


def test_override_takes_precedence_over_builtin(toy):
    _, manifests = toy
    _manifest(manifests, '[[files]]\nname = "x"\nurl = "u"\ntofu = true\n', name="kriegeskorte2008")
    assert [f.name for f in data.load_manifest("kriegeskorte2008").files] == ["x"]
    assert "kriegeskorte2008" in data.list_manifests()


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def test_unpack_zip_and_tar_once(toy):
    mirror, manifests = toy
    (mirror / "a.zip").write_bytes(_zip_bytes({"dir/x.txt": b"zip!"}))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("inner/y.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"tar!"))
    (mirror / "b.tar.gz").write_bytes(buf.getvalue())
    body = "".join(f'[[files]]\nname = "{n}"\nurl = "u"\nsha256 = "{hashlib.sha256((mirror / n).read_bytes()).hexdigest()}"\n'
                   for n in ("a.zip", "b.tar.gz"))
    _manifest(manifests, body)
    folder = data.unpack("toyset", "a.zip")
    assert (folder / "dir" / "x.txt").read_bytes() == b"zip!"
    assert folder.is_relative_to(data.cache_path("toyset", ""))
    (folder / "dir" / "x.txt").write_bytes(b"edited")  # a second call does not extract again
    assert (data.unpack("toyset", "a.zip") / "dir" / "x.txt").read_bytes() == b"edited"
    assert (data.unpack("toyset", "b.tar.gz") / "inner" / "y.txt").read_bytes() == b"tar!"


def test_unpack_refuses_members_outside_the_folder(toy):
    mirror, manifests = toy
    (mirror / "evil.zip").write_bytes(_zip_bytes({"../../escape.txt": b"x"}))
    digest = hashlib.sha256((mirror / "evil.zip").read_bytes()).hexdigest()
    _manifest(manifests, f'[[files]]\nname = "evil.zip"\nurl = "u"\nsha256 = "{digest}"\n')
    with pytest.raises(NeurobenchError, match="outside"):
        data.unpack("toyset", "evil.zip")
