"""Fault class 6: trust-on-first-use records under concurrency. The record is updated under a file
lock by read-modify-write and an atomic replace: eight processes recording at once lose nothing,
and two different first copies of one file cannot both become trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from neurobench.data import files as data
from neurobench.errors import ChecksumMismatchError

N_PROCESSES, FILES_EACH = 8, 25


_RECORDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from neurobench.data import files
    go, me, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    for k in range(n):
        files.resolve("toyset", f"p{me}/f{k}.bin")
""")


def test_eight_processes_recording_at_once_lose_no_record(toy, tmp_path):
    """The probe: 8 processes writing trust-on-first-use records lost one."""
    entries = []
    for me in range(N_PROCESSES):
        for k in range(FILES_EACH):
            name = f"p{me}/f{k}.bin"
            toy.put("toyset", name, f"{name} payload".encode())
            entries.append({"name": name, "url": "https://data.invalid/x", "tofu": True})
    toy.publish("toyset", entries)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _RECORDER, str(go), str(me), str(FILES_EACH)],
                              env=dict(os.environ), stderr=subprocess.PIPE, text=True) for me in range(N_PROCESSES)]
    time.sleep(1.0)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
    record = json.loads((toy.home / "data" / ".tofu" / "toyset.json").read_text())
    assert sorted(record) == sorted(e["name"] for e in entries)  # all 200 records, none lost
    for name in record:
        assert data.recorded_digest("toyset", name) is not None


def test_two_first_copies_of_one_file_cannot_both_be_trusted(toy):
    toy.put("toyset", "a.bin", b"the mirror's copy")
    toy.publish("toyset", [{"name": "a.bin", "url": "https://data.invalid/x", "tofu": True}])
    cached = data.cache_path("toyset", "a.bin")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"another copy")  # looked at first (the cache comes before the mirror)
    first = data.resolve("toyset", "a.bin")
    assert first == cached
    cached.write_bytes(b"a third copy")
    with pytest.raises(ChecksumMismatchError, match="recorded at first use"):
        data.resolve("toyset", "a.bin")  # the mirror's copy differs from the record too: refused
    cached.unlink()
    with pytest.raises(ChecksumMismatchError, match="recorded at first use"):
        data.resolve("toyset", "a.bin")


def test_a_damaged_record_is_a_typed_error(toy):
    toy.put("toyset", "a.bin", b"payload")
    toy.publish("toyset", [{"name": "a.bin", "url": "https://data.invalid/x", "tofu": True}])
    record = toy.home / "data" / ".tofu" / "toyset.json"
    record.parent.mkdir(parents=True)
    record.write_text("[1, 2, 3]")
    with pytest.raises(ChecksumMismatchError, match="not a trust-on-first-use record"):
        data.resolve("toyset", "a.bin")
