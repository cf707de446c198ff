"""Fixtures for the fault-injection suite (tests/faults): generic, for any part of neurobench.

- `faulty_server`: a threaded HTTP server on 127.0.0.1 whose misbehaviour is scripted per request
  (see FaultyServer).
- `toy`: a dataset of the test's own (data_support.Toy): NEUROBENCH_HOME, NEUROBENCH_MANIFESTS and
  NEUROBENCH_MIRROR pointed into tmp_path, with helpers to put files and publish a manifest.
- `cli`: `neurobench ...` in this process (fast; an exception that escapes the CLI fails the test);
  `run_cli`: the same in a fresh process, for crashes, concurrency and process-wide state.
  Both return a subprocess.CompletedProcess; `no_traceback` checks that a failure came out as a
  typed error (exit code 2, `error:` on stderr, no Python traceback).
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
import time

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a closed socket ends the body

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        body = srv.files.get(self.path)
        fault = srv.script.pop(0) if srv.script else srv.always
        entry = {"path": self.path, "range": self.headers.get("Range"), "fault": fault, "status": None, "sent": 0}
        srv.log.append(entry)
        kind, arg = (fault if isinstance(fault, tuple) else (fault, None))
        if kind == "status":
            return self._head(entry, arg, 0)
        if body is None:
            return self._head(entry, 404, 0)
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", entry["range"] or "")
        if match and kind != "ignore-range":
            start = int(match.group(1))
            if start >= len(body):
                return self._head(entry, 416, 0, {"Content-Range": f"bytes */{len(body)}"})
        if kind == "wrong-start":
            start = arg
        rest = body[start:]
        status = 206 if (match and kind != "ignore-range") or kind == "wrong-start" else 200
        headers = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if status == 206 else {}
        if kind == "stream":  # no Content-Length: `arg` bytes, then the connection closes
            return self._send(entry, status, rest + bytes(max(arg - len(rest), 0)), headers)
        self._head(entry, status, len(rest), headers)
        if kind == "drop":  # announce everything, send `arg` bytes, hang up
            return self._write(entry, rest[:arg])
        if kind == "stall":  # headers, then nothing for `arg` seconds
            srv.stop.wait(arg)
            return
        if kind in ("trickle", "slow"):  # `arg` = (bytes per step, seconds per step)
            step, every = arg
            for i in range(0, len(rest), step):
                if srv.stop.is_set() or not self._write(entry, rest[i:i + step]):
                    return
                time.sleep(every)
            return
        self._write(entry, rest)

    def _head(self, entry, status, length, headers=None):
        entry["status"] = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, entry, status, body, headers):
        """A response without Content-Length: the body ends when the connection closes."""
        entry["status"] = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self._write(entry, body)

    def _write(self, entry, data) -> bool:
        """Write in 64 KiB pieces, counting what the socket took; False once the client is gone."""
        for i in range(0, len(data), 1 << 16):
            try:
                self.wfile.write(data[i:i + (1 << 16)])
                self.wfile.flush()
            except OSError:
                return False
            entry["sent"] += len(data[i:i + (1 << 16)])
        return True


class FaultyServer(http.server.ThreadingHTTPServer):
    """Serves `files` (URL path -> bytes) and honours `Range: bytes=N-`, except as scripted.

    `script` is a list of faults applied to successive requests, one each; then `always` applies
    (None: normal service). A fault is None or a tuple (kind, arg):

    - ("status", code): answer `code` with an empty body (e.g. 503, 500, 404)
    - ("drop", n): announce the full length, send n bytes, close the connection
    - ("stall", s): send the headers, then nothing for s seconds
    - ("trickle", (n, s)) / ("slow", (n, s)): n bytes every s seconds
    - ("stream", n): no Content-Length; n bytes (the file, then zeros), then close
    - ("ignore-range", None): answer 200 with the whole file whatever the Range
    - ("wrong-start", k): answer 206 from byte k, whatever was asked

    `log` holds one dict per request: path, range, fault, status, sent (bytes written).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.script: list = []
        self.always = None
        self.log: list[dict] = []
        self.stop = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    from .data_support import Toy

    return Toy(tmp_path, monkeypatch)


@pytest.fixture
def faulty_server():
    server = FaultyServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def cli(capsys):
    """cli(*args) -> CompletedProcess of `neurobench args` run in this process (stdout, stderr captured)."""

    def run(*args) -> subprocess.CompletedProcess:
        from neurobench.cli import main

        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["neurobench", *map(str, args)], code, out, err)

    return run


@pytest.fixture
def run_cli():
    """run_cli(*args, timeout=120, **popen) -> CompletedProcess of `python -m neurobench.cli args`
    in a fresh process with the test's environment (os.environ as monkeypatched)."""

    def run(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "neurobench.cli", *map(str, args)], env=dict(os.environ),
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    return run


def no_traceback(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert that a CLI run failed as a typed error (exit `code`, `error:` and no traceback on
    stderr); return stderr."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    if code == 2:
        assert "error:" in proc.stderr, proc.stderr
    return proc.stderr
