"""Fault class 8: what used to end in a traceback on the data side. A manifest that cannot be used
is a ManifestError naming the file, the entry and the rule, and does not break the listing of the
other benchmarks; NEUROBENCH_HOME that is a file or read-only is said before any work; a
NEUROBENCH_MIRROR entry that does not exist is skipped with a warning."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from neurobench.data import files as data
from neurobench.errors import ManifestError

from .conftest import no_traceback

HEADER = 'name = "toyset"\ntitle = "toy"\nlicense = "CC0"\n'
GOOD = '[[files]]\nname = "a.bin"\nurl = "https://data.invalid/a"\ntofu = true\n'


@pytest.mark.parametrize("body, problem", [
    ("name = toyset\n[[files\n", "not valid TOML"),
    ('[[files]]\nurl = "https://data.invalid/a"\ntofu = true\n', "needs `name`"),
    ('[[files]]\nname = "a.bin"\ntofu = true\n', "needs `url`"),
    ('[[files]]\nname = "a.bin"\nurl = "u"\nsize = "big"\ntofu = true\n', "`size` must be a whole number"),
    ('[[files]]\nname = "a.bin"\nurl = "u"\nsize = -1\ntofu = true\n', "`size` must be a number of bytes >= 0"),
    ('[[files]]\nname = 5\nurl = "u"\ntofu = true\n', "`name` must be a string"),
    ('[[files]]\nname = "a.bin"\nurl = "u"\nsha256 = "abc"\n', "`sha256` must be 64 hex digits"),
    ('[[files]]\nname = "a.bin"\nurl = "u"\n', "exactly one of sha256, sha1, md5 or `tofu = true`"),
    ('[[files]]\nname = "s{x}.bin"\nurl = "u"\ntofu = true\nexpand = { y = [1] }\n', "`expand` must be a table"),
    ('[[files]]\nname = "a.bin"\nurl = "u"\ntofu = true\n' * 2, "listed twice"),
    ("files = 3\n", "`files` must be an array of tables"),
])
def test_an_unusable_manifest_is_a_manifest_error_naming_file_and_rule(toy, body, problem):
    (toy.manifests / "toyset.toml").write_text(HEADER.replace('name = "toyset"\n', "") + body
                                                if body.startswith("name =") else HEADER + body)
    with pytest.raises(ManifestError) as info:
        data.load_manifest("toyset")
    assert str(toy.manifests / "toyset.toml") in str(info.value) and problem in str(info.value)


def test_a_manifest_must_carry_its_own_name(toy):
    (toy.manifests / "toyset.toml").write_text(HEADER.replace("toyset", "otherset") + GOOD)
    with pytest.raises(ManifestError, match="says name = 'otherset', but its file is named toyset.toml"):
        data.load_manifest("toyset")


def test_one_bad_manifest_does_not_break_the_benchmark_listing(toy, cli):
    """The probe: malformed manifest TOML killed `neurobench list benchmarks`."""
    (toy.manifests / "kriegeskorte2008.toml").write_text('name = "kriegeskorte2008"\n[[files]\n')
    result = cli("list", "benchmarks")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.stdout.splitlines()
            if line.startswith("│ ") and line.split("│")[1].strip()}
    assert "kriegeskorte2008.hit-rsa" in rows, result.stdout + result.stderr
    assert rows["kriegeskorte2008.hit-rsa"] == "error" and rows["nsd.v1-encoding"] == "missing"
    assert "kriegeskorte2008.hit-rsa" in result.stderr and "not valid TOML" in result.stderr.replace("\n", "")
    err = no_traceback(cli("fetch", "kriegeskorte2008")).replace("\n", "")
    assert "kriegeskorte2008.toml is not valid TOML" in err


def test_a_home_that_is_a_file_is_said_before_any_work(tmp_path, monkeypatch, cli):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("NEUROBENCH_HOME", str(home))
    err = no_traceback(cli("fetch", "kriegeskorte2008"))
    assert f"NEUROBENCH_HOME={home} is a file, not a folder" in err.replace("\n", "")
    assert home.read_text() == "not a folder"


_AS_NOBODY = """
import os, sys
import neurobench.cli
if os.geteuid() == 0:  # permission bits do not stop root: drop to the unprivileged user nobody
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.exit(neurobench.cli.main(sys.argv[1:]))
"""


def test_a_read_only_home_is_said_before_any_work():
    root = Path(tempfile.mkdtemp(prefix="nb-readonly-"))
    try:
        os.chmod(root, 0o755)
        home = root / "home"
        home.mkdir()
        os.chmod(home, 0o555)
        env = {**os.environ, "NEUROBENCH_HOME": str(home)}
        proc = subprocess.run([sys.executable, "-c", _AS_NOBODY, "fetch", "kriegeskorte2008"], env=env,
                              capture_output=True, text=True, timeout=120)
        err = no_traceback(proc).replace("\n", "")
        assert f"NEUROBENCH_HOME={home} is not writable" in err and "Permission denied" in err
        assert list(home.iterdir()) == []
    finally:
        os.chmod(root / "home", 0o755)
        shutil.rmtree(root)


def test_a_missing_mirror_entry_is_skipped_with_a_warning(monkeypatch, fresh_home, caplog, tmp_path, cli):
    shared = os.environ.get("NEUROBENCH_MIRROR", "")
    if not Path(shared.split(os.pathsep)[0] or "/nonexistent").is_dir():
        pytest.skip("the shared data mirror (../shared/data) is not present")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setenv("NEUROBENCH_MIRROR", os.pathsep.join(["/no/such/mirror", str(a_file), shared]))
    with caplog.at_level(logging.WARNING, logger="neurobench.paths"):
        assert data.resolve("kriegeskorte2008", "92_brainRDMs.mat").is_file()
    assert "NEUROBENCH_MIRROR entry /no/such/mirror does not exist; skipping it" in caplog.text
    assert f"NEUROBENCH_MIRROR entry {a_file} is not a folder" in caplog.text
    assert cli("fetch", "kriegeskorte2008").returncode == 0


@pytest.mark.parametrize("variable", ["NEUROBENCH_DOWNLOAD_DEADLINE_S", "NEUROBENCH_DOWNLOAD_STALL_S"])
def test_a_bad_download_setting_is_named(toy, cli, monkeypatch, variable):
    toy.publish("toyset", [{"name": "a.bin", "url": "http://127.0.0.1:9/a", "tofu": True}])
    monkeypatch.setenv("NEUROBENCH_OFFLINE", "0")
    monkeypatch.setenv(variable, "soon")
    err = no_traceback(cli("fetch", "toyset"))
    assert f"{variable}='soon' is not a positive number of seconds" in err
