"""Resumable verified downloads against a loopback HTTP server that can drop, ignore Range and answer 416."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import random
import re
import threading

import pytest

from neurobench import progress as progress_mod
from neurobench.data import download as dl
from neurobench.errors import ChecksumMismatchError, DataUnavailableError, InvalidInputError

PAYLOAD = random.Random(7).randbytes(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; honours `bytes=N-` ranges unless told otherwise; records every request."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        entry = {"range": self.headers.get("Range"), "status": None, "sent": 0}
        srv.log.append(entry)
        body = srv.files.get(self.path)
        status = srv.statuses.pop(0) if srv.statuses else None  # None in the script: serve normally
        if status is not None:
            return self._reply(entry, status, b"")
        if body is None:
            return self._reply(entry, 404, b"")
        match = re.fullmatch(r"bytes=(\d+)-", entry["range"] or "")
        if not match or srv.ignore_range:
            return self._reply(entry, 200, body)
        start = 0 if srv.wrong_start else int(match.group(1))
        if start >= len(body):
            return self._reply(entry, 416, b"", {"Content-Range": f"bytes */{len(body)}"})
        return self._reply(entry, 206, body[start:], {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})

    def _reply(self, entry, status, body, headers=None):
        entry["status"] = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drops > 0 and status in (200, 206):  # promise everything, send a little, hang up
            self.server.drops -= 1
            body = body[: self.server.drop_after]
        entry["sent"] = len(body)  # before writing: the client may check the log as soon as the last byte lands
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(dl, "_BACKOFF_S", 0.0)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.log, srv.statuses = {"/blob.bin": PAYLOAD}, [], []
    srv.ignore_range = srv.wrong_start = False
    srv.drops, srv.drop_after = 0, 0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/blob.bin"
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _get(srv, target, **kw):
    kw.setdefault("algorithm", "sha256")
    kw.setdefault("expected", SHA256)
    return dl.download(srv.url, target, chunk_size=4096, progress=False, **kw)


def test_full_download_verifies_and_leaves_only_the_target(server, tmp_path):
    target = tmp_path / "sub" / "blob.bin"
    assert _get(server, target, size=len(PAYLOAD)) == SHA256
    assert target.read_bytes() == PAYLOAD
    left = sorted(p.name for p in target.parent.iterdir())
    assert left == ["blob.bin", "blob.bin.part.lock"]  # the (empty) lock stays: deleting it would race
    assert server.log == [{"range": None, "status": 200, "sent": len(PAYLOAD)}]


def test_mismatch_deletes_the_part_and_names_both_digests(server, tmp_path):
    target = tmp_path / "blob.bin"
    wrong = hashlib.sha256(b"another release").hexdigest()
    with pytest.raises(ChecksumMismatchError) as info:
        _get(server, target, expected=wrong)
    msg = str(info.value)
    assert server.url in msg and "sha256" in msg and wrong in msg and SHA256 in msg
    assert not target.exists() and not dl.part_path(target).exists()


def test_size_mismatch_is_reported(server, tmp_path):
    with pytest.raises(ChecksumMismatchError, match="300000 bytes, expected 400000"):
        _get(server, tmp_path / "blob.bin", size=400_000)


def test_dropped_connection_resumes_with_range_and_fetches_only_the_rest(server, tmp_path, caplog):
    server.drops, server.drop_after = 1, 24 * 4096  # whole chunks: what the client writes before the drop
    target = tmp_path / "blob.bin"
    with caplog.at_level(logging.INFO, logger="neurobench.data.download"):
        assert _get(server, target) == SHA256
    assert target.read_bytes() == PAYLOAD
    assert server.log == [
        {"range": None, "status": 200, "sent": 98_304},
        {"range": "bytes=98304-", "status": 206, "sent": len(PAYLOAD) - 98_304},
    ]
    assert "resuming" in caplog.text


def test_existing_part_resumes(server, tmp_path, caplog):
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(PAYLOAD[:123_456])
    with caplog.at_level(logging.INFO, logger="neurobench.data.download"):
        assert _get(server, target, size=len(PAYLOAD)) == SHA256
    assert target.read_bytes() == PAYLOAD and not dl.part_path(target).exists()
    assert server.log == [{"range": "bytes=123456-", "status": 206, "sent": len(PAYLOAD) - 123_456}]
    assert "resuming" in caplog.text and "123456" in caplog.text


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.ignore_range = True
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(b"stale bytes from elsewhere")
    assert _get(server, target) == SHA256
    assert target.read_bytes() == PAYLOAD
    assert server.log == [{"range": "bytes=26-", "status": 200, "sent": len(PAYLOAD)}]


def test_content_range_from_the_wrong_byte_restarts(server, tmp_path):
    server.wrong_start = True
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(PAYLOAD[:1000])
    assert _get(server, target) == SHA256
    assert target.read_bytes() == PAYLOAD
    assert [(e["range"], e["status"]) for e in server.log] == [("bytes=1000-", 206), (None, 200)]


def test_416_with_a_complete_part_just_verifies(server, tmp_path):
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(PAYLOAD)
    assert _get(server, target) == SHA256
    assert target.read_bytes() == PAYLOAD
    assert server.log == [{"range": f"bytes={len(PAYLOAD)}-", "status": 416, "sent": 0}]


def test_stale_complete_part_is_downloaded_again(server, tmp_path):
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(b"y" * len(PAYLOAD))  # same length, other content: an earlier release
    assert _get(server, target) == SHA256
    assert target.read_bytes() == PAYLOAD
    assert [e["status"] for e in server.log] == [416, 200]


def test_oversized_part_is_discarded_when_the_size_is_known(server, tmp_path):
    target = tmp_path / "blob.bin"
    dl.part_path(target).write_bytes(PAYLOAD + b"extra")
    assert _get(server, target, size=len(PAYLOAD)) == SHA256
    assert server.log == [{"range": None, "status": 200, "sent": len(PAYLOAD)}]


def test_giving_up_keeps_the_part_and_running_again_resumes(server, tmp_path):
    """Retries count attempts without progress: a drop after 48 KiB, then three 503s, gives up."""
    server.drops, server.drop_after, server.statuses = 1, 12 * 4096, [None, 503, 503, 503]
    target = tmp_path / "blob.bin"
    with pytest.raises(DataUnavailableError) as info:
        _get(server, target, retries=2, size=len(PAYLOAD))
    msg = str(info.value)
    have = 12 * 4096
    assert "3 attempts without progress" in msg and "49.2 KB of 300.0 KB" in msg and "again resumes" in msg
    assert dl.part_path(target).read_bytes() == PAYLOAD[:have] and not target.exists()
    server.drops, server.log[:] = 0, []
    assert _get(server, target) == SHA256
    assert server.log == [{"range": f"bytes={have}-", "status": 206, "sent": len(PAYLOAD) - have}]


def test_transient_http_errors_are_retried_and_404_is_not(server, tmp_path):
    server.statuses = [503, 502]
    assert _get(server, tmp_path / "a.bin") == SHA256
    assert [e["status"] for e in server.log] == [503, 502, 200]
    server.log[:] = []
    with pytest.raises(DataUnavailableError, match="HTTP 404"):
        dl.download(server.url.replace("blob", "nothing"), tmp_path / "b.bin", algorithm=None, expected=None)
    assert len(server.log) == 1


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_other_algorithms_and_trust_on_first_use(server, tmp_path, algorithm):
    digest = hashlib.new(algorithm, PAYLOAD).hexdigest()
    assert _get(server, tmp_path / "a.bin", algorithm=algorithm, expected=digest.upper()) == digest
    assert _get(server, tmp_path / "b.bin", algorithm=algorithm, expected=None) == digest
    with pytest.raises(ChecksumMismatchError, match=f"{algorithm} expected"):
        _get(server, tmp_path / "c.bin", algorithm=algorithm, expected="0" * len(digest))


def test_default_algorithm_is_sha256(server, tmp_path):
    assert dl.download(server.url, tmp_path / "a.bin", algorithm=None, expected=None, progress=False) == SHA256


def test_bad_algorithm_or_digest_fails_before_any_request(server, tmp_path):
    with pytest.raises(InvalidInputError, match="supported: sha256, sha1, md5"):
        _get(server, tmp_path / "a.bin", algorithm="crc32")
    with pytest.raises(InvalidInputError, match="fits md5"):
        _get(server, tmp_path / "a.bin", algorithm="sha256", expected=hashlib.md5(PAYLOAD).hexdigest())
    assert server.log == []


def test_progress_is_silent_off_a_terminal(server, tmp_path, monkeypatch):
    monkeypatch.setattr(progress_mod, "_enabled", None)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)

    def no_bar():
        raise AssertionError("a progress bar was created off a terminal")

    monkeypatch.setattr(dl, "_make_progress", no_bar)
    assert dl.download(server.url, tmp_path / "a.bin", algorithm="sha256", expected=SHA256) == SHA256


def test_progress_bar_counts_bytes_across_a_resume(server, tmp_path, monkeypatch):
    from rich.console import Console
    from rich.progress import Progress

    bars = []

    def make():
        bars.append(Progress(console=Console(file=io.StringIO(), force_terminal=True)))
        return bars[-1]

    monkeypatch.setattr(dl, "_make_progress", make)
    server.drops, server.drop_after = 1, 70_000
    assert dl.download(server.url, tmp_path / "a.bin", algorithm="sha256", expected=SHA256, progress=True) == SHA256
    (task,) = bars[0].tasks
    assert task.completed == task.total == len(PAYLOAD) and task.description == "a.bin"


def test_fetch_command_resumes_an_interrupted_download(server, tmp_path, monkeypatch, fresh_home, capsys):
    """`neurobench fetch` end to end: the first run gives up mid-file and says so; the second resumes
    with a Range request for the rest, and the file is verified and cached."""
    from neurobench import cli
    from neurobench.data import files as data

    big = random.Random(8).randbytes(8 << 20)
    server.files["/big.bin"] = big
    url = server.url.replace("blob.bin", "big.bin")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "toyset.toml").write_text(
        f'name = "toyset"\ntitle = "toy"\nlicense = "CC0"\n[[files]]\nname = "big.bin"\nurl = "{url}"\n'
        f'sha256 = "{hashlib.sha256(big).hexdigest()}"\nsize = {len(big)}\n')
    monkeypatch.setenv("NEUROBENCH_MANIFESTS", str(manifests))
    monkeypatch.setenv("NEUROBENCH_MIRROR", "")
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    server.drops, server.drop_after = 1, 3 << 19  # the first run breaks off after 1.5 MiB, then gets 503s
    server.statuses = [None, 503, 503, 503, 503]
    assert cli.main(["fetch", "toyset"]) == 2
    assert "again" in capsys.readouterr().err  # the error says that running it again resumes
    part = dl.part_path(data.cache_path("toyset", "big.bin"))
    fetched = part.stat().st_size
    assert 0 < fetched < len(big)
    server.drops, server.log[:] = 0, []
    assert cli.main(["fetch", "toyset"]) == 0
    assert server.log[0]["range"] == f"bytes={fetched}-" and server.log[0]["sent"] == len(big) - fetched
    assert data.cache_path("toyset", "big.bin").read_bytes() == big
    assert "sha256 ok" in capsys.readouterr().out


def test_a_second_process_waits_for_the_first_and_finds_the_file_done(server, tmp_path):
    """The .part lock: while one download holds it, another waits, then returns without fetching."""
    import fcntl

    target = tmp_path / "a.bin"
    lock = open(dl.part_path(target).with_name("a.bin.part.lock"), "a+b")
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = []
    worker = threading.Thread(target=lambda: done.append(_get(server, target)))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and server.log == []  # waiting, not downloading
    target.write_bytes(PAYLOAD)  # what the lock holder would have produced
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    worker.join(10)
    assert done == [SHA256] and server.log == []
