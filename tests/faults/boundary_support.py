"""Helpers for the boundary fault-injection tests (test_boundary_*, test_store_*, test_cli_*)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from neurobench.cli import main
from neurobench.registry import benchmarks, discover_plugins, load_plugin, models, plugin_errors

PLUGIN = Path(__file__).with_name("boundary_plugin.py")


@contextlib.contextmanager
def undo_registrations():
    """Registrations and plugin errors made inside the block are removed afterwards, so the fault
    plugin's models and benchmarks never leak into other tests. The built-in plugins are imported
    first: their registrations (made on demand) must outlive the block."""
    discover_plugins()
    before = {"m": set(models._entries), "b": set(benchmarks._entries)}
    errors = dict(plugin_errors)
    try:
        yield
    finally:
        for name in set(models._entries) - before["m"]:
            models.remove(name)
        for name in set(benchmarks._entries) - before["b"]:
            benchmarks.remove(name)
        plugin_errors.clear()
        plugin_errors.update(errors)


@pytest.fixture(autouse=True)
def clean_registrations():
    """Autouse in every module that imports it: each test's registrations are undone."""
    with undo_registrations():
        yield


def cli(capsys, *argv: str, plugin: bool = True) -> tuple[int, str, str]:
    """`neurobench [--plugin boundary_plugin.py] ARGV` in this process: (exit code, stdout, stderr).
    An exception that escapes the CLI (a traceback for the user) fails the test."""
    capsys.readouterr()
    rc = main((["--plugin", str(PLUGIN)] if plugin else []) + list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def typed_error(rc: int, err: str, *phrases: str) -> str:
    """Assert a typed error: exit code 2, one `error:` line that holds every phrase, no traceback."""
    assert rc == 2, f"exit code {rc}, expected 2; stderr: {err}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for phrase in phrases:
        assert phrase in lines[0], f"{phrase!r} not in {lines[0]!r}"
    return lines[0]


def load() -> None:
    """Register the fault plugin's models and benchmarks (inside `undo_registrations`)."""
    problem = load_plugin(str(PLUGIN))
    assert problem is None, problem


@contextlib.contextmanager
def read_only(*paths: Path):
    """Make files and folders read-only for this process: chmod for a user; for root, which
    permissions do not stop, the immutable attribute (chattr +i), undone afterwards."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(p.stat().st_mode & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    try:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"running as root, whom permissions do not stop, and chattr +i is not available here ({exc})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=False, capture_output=True)
