"""Helpers for the boundary fault-injection tests (test_boundary_*, test_store_*, test_cli_*)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from neurobench.cli import main
from neurobench.registry import benchmarks, load_plugin, models, plugin_errors

PLUGIN = Path(__file__).with_name("boundary_plugin.py")


@contextlib.contextmanager
def undo_registrations():
    """Registrations and plugin errors made inside the block are removed afterwards, so the fault
    plugin's models and benchmarks never leak into other tests."""
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
