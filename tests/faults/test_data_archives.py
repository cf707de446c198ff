"""Fault class 4: archives. Zip and tar bombs are refused by the size and ratio limits before (zip:
its directory; tar: each header) and during extraction; concurrent unpackers of one archive wait
for one another and all see the complete folder; a SIGKILL mid-extraction leaves nothing that
looks complete, and the next run unpacks cleanly."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile

import pytest

from neurobench.data import files as data
from neurobench.errors import ArchiveError, NeurobenchError

from .data_support import tar_bytes

DEFAULT_MAX_RATIO = 100  # documented default of NEUROBENCH_UNPACK_MAX_RATIO
ZEROS_MIB = 128  # 128 MiB of zeros deflate to ~130 kB: the ratio (~1000) of the probe's 1 MB -> 1 GiB bomb


def _zip_bomb(mib: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        block = bytes(1 << 20)
        for _ in range(mib):
            fh.write(block)
    return buf.getvalue()


def _tar_bomb(mib: int) -> bytes:
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = mib << 20
        tf.addfile(info, io.BufferedReader(Zeros(info.size)))
    return buf.getvalue()


def _publish(toy, name: str, blob: bytes):
    toy.put("toyset", name, blob)
    toy.publish("toyset", [toy.entry(name, blob)])


def _nothing_left(name: str) -> bool:
    folder = data.cache_path("toyset", "")
    return not data.cache_path("toyset", name + ".contents").exists() and not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_archive_bomb_is_refused_by_the_ratio_limit(toy, kind):
    name = f"bomb.{kind}"
    blob = _zip_bomb(ZEROS_MIB) if kind == "zip" else _tar_bomb(ZEROS_MIB)
    assert len(blob) * DEFAULT_MAX_RATIO < ZEROS_MIB << 20
    _publish(toy, name, blob)
    with pytest.raises(ArchiveError, match="NEUROBENCH_UNPACK_MAX_RATIO") as info:
        data.unpack("toyset", name)
    assert "bomb" in str(info.value) and name in str(info.value)
    assert _nothing_left(name)


def test_a_zip_bomb_is_refused_before_a_byte_is_written(toy, monkeypatch):
    _publish(toy, "bomb.zip", _zip_bomb(16))
    written = []
    real_open = open

    def watching_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith("zeros.bin"):
            written.append(path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    with pytest.raises(ArchiveError):
        data.unpack("toyset", "bomb.zip")
    assert written == []


def test_the_total_size_limit_stops_a_tar_during_extraction(toy, monkeypatch):
    members = {f"part{i}.bin": os.urandom(4000) for i in range(5)}
    _publish(toy, "parts.tar", tar_bytes(members, "w"))
    monkeypatch.setenv("NEUROBENCH_UNPACK_MAX_BYTES", "10000")  # the third member passes it
    with pytest.raises(ArchiveError, match=r"more than .*part2\.bin.*NEUROBENCH_UNPACK_MAX_BYTES"):
        data.unpack("toyset", "parts.tar")
    assert _nothing_left("parts.tar")
    monkeypatch.setenv("NEUROBENCH_UNPACK_MAX_BYTES", "20000")
    folder = data.unpack("toyset", "parts.tar")
    assert {p.name: p.read_bytes() for p in folder.glob("*.bin")} == members


def test_the_limits_can_be_raised_and_bad_values_are_named(toy, monkeypatch):
    _publish(toy, "bomb.zip", _zip_bomb(8))
    with pytest.raises(ArchiveError):
        data.unpack("toyset", "bomb.zip")
    monkeypatch.setenv("NEUROBENCH_UNPACK_MAX_RATIO", "5000")
    assert (data.unpack("toyset", "bomb.zip") / "zeros.bin").stat().st_size == 8 << 20
    monkeypatch.setenv("NEUROBENCH_UNPACK_MAX_RATIO", "a lot")
    data.cache_path("toyset", "bomb.zip.contents/.neurobench-unpacked").unlink()
    with pytest.raises(ArchiveError, match="NEUROBENCH_UNPACK_MAX_RATIO='a lot' is not a positive number"):
        data.unpack("toyset", "bomb.zip")


def test_a_file_that_is_no_archive_is_a_typed_error(toy):
    _publish(toy, "fake.zip", b"PK\x03\x04 but nothing else")
    with pytest.raises(NeurobenchError, match="fake.zip"):
        data.unpack("toyset", "fake.zip")


def _many_files(n: int, size: int) -> dict[str, bytes]:
    rng = __import__("random").Random(5)
    return {f"inner/f{i:04d}.bin": rng.randbytes(size) for i in range(n)}


_UNPACKER = textwrap.dedent("""
    import hashlib, json, logging, sys, time
    from pathlib import Path
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurobench.data import files
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.001)
    folder = files.unpack("toyset", "big.tar")
    print(json.dumps({p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in folder.rglob("*.bin")}))
""")


def test_four_processes_unpacking_one_archive_all_see_the_complete_folder(toy, tmp_path):
    """The probe: 4 processes unpacking one archive crashed two and showed a third a half-replaced
    folder. Now one unpacks, the others wait for it and reuse the result."""
    members = _many_files(1500, 16_000)
    _publish(toy, "big.tar", tar_bytes(members, "w"))
    expected = {name: hashlib.sha256(payload).hexdigest() for name, payload in members.items()}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _UNPACKER, str(go)], env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(1.0)  # let all four start and wait at the barrier
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert json.loads(out) == expected
    extractions = [line for _, err in results for line in err.splitlines() if line.startswith("unpacking ")]
    assert len(extractions) == 1  # one extraction; the others waited for it and reused the folder
    assert _nothing_left("nothing") and not list(data.cache_path("toyset", "").glob("*.old"))


def test_sigkill_during_extraction_leaves_nothing_that_looks_complete(toy):
    """Worked before (temporary folder renamed into place): kept as a regression test."""
    members = _many_files(3000, 20_000)
    _publish(toy, "big.tar", tar_bytes(members, "w"))
    child = subprocess.Popen([sys.executable, "-c", "from neurobench.data import files; files.unpack('toyset', 'big.tar')"],
                             env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = data.cache_path("toyset", "")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [t for t in folder.glob("big.tar.contents.*.tmp") if len(list((t / "inner").glob("*"))) > 100] \
            if folder.is_dir() else []
        if partial or child.poll() is not None:
            break
        time.sleep(0.01)
    assert partial, "the extraction finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    target = data.cache_path("toyset", "big.tar.contents")
    assert not (target / ".neurobench-unpacked").exists()  # nothing that looks complete
    result = data.unpack("toyset", "big.tar")
    assert {p.relative_to(result).as_posix(): p.read_bytes() for p in result.rglob("*.bin")} == members
    assert not list(folder.glob("*.tmp"))


def test_a_new_version_of_an_archive_replaces_the_old_folder_whole(toy):
    _publish(toy, "v.tar", tar_bytes({"a.txt": b"one", "b.txt": b"two"}, "w"))
    old = data.unpack("toyset", "v.tar")
    reader = open(old / "a.txt", "rb")  # another process's open file in the old folder
    _publish(toy, "v.tar", tar_bytes({"a.txt": b"ONE"}, "w"))  # a new release, a new checksum
    new = data.unpack("toyset", "v.tar")
    assert sorted(p.name for p in new.iterdir()) == [".neurobench-unpacked", "a.txt"]
    assert (new / "a.txt").read_bytes() == b"ONE" and reader.read() == b"one"
    reader.close()
    leftovers = [p for pattern in ("*.tmp", "*.old") for p in data.cache_path("toyset", "").glob(pattern)]
    assert leftovers == []
