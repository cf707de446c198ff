"""Fault injection on the command line and the API's run parameters: each bad value ends in a
typed error (exit code 2, one line saying what to do), checked before any model is loaded."""

from __future__ import annotations

import pytest
import torch

import neurobench as nb
from neurobench import api
from neurobench.errors import InvalidInputError, StoreError

from .boundary_support import clean_registrations, cli, read_only, typed_error  # noqa: F401 (autouse)


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model is the first expensive step: a flag error must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the run's parameters were checked")

    monkeypatch.setattr(api, "load_model", refuse)


def _missing_devices() -> list[str]:
    out = ["banana", "meta", "cuda:99"]
    if not torch.cuda.is_available():
        out.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        out.append("mps")
    return out


FLAG_FAULTS = (
    [(["--device", d], ["device", "this machine has: cpu"]) for d in _missing_devices()]
    + [(["--memory-budget", v], ["--memory-budget", "positive size like 4GB"]) for v in ("inf", "nan", "-1", "0", "lots")]
    + [(["--seed", str(v)], ["seed must be between 0 and 4294967295"]) for v in (2**64, 2**32, -1)]
    + [(["--batch-size", v], ["batch size must be at least 1"]) for v in ("0", "-3")]
)


@pytest.mark.parametrize("flags,phrases", FLAG_FAULTS, ids=[" ".join(f) for f, _ in FLAG_FAULTS])
def test_bad_score_flag_is_a_typed_error_before_any_work(capsys, tmp_path, no_model_load, flags, phrases):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", "fault.good-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--quiet", *flags)
    typed_error(rc, err, *phrases)


@pytest.mark.parametrize("kwargs,match", [
    ({"device": "banana"}, "unknown device 'banana'"),
    ({"device": "cuda:99"}, "cuda:99"),
    ({"memory_budget": float("inf")}, "memory budget"),
    ({"memory_budget": 0}, "memory budget"),
    ({"memory_budget": -5}, "memory budget"),
    ({"seed": 2**64}, "seed must be"),
    ({"seed": -1}, "seed must be"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"batch_size": 0}, "batch size"),
], ids=lambda v: str(v))
def test_bad_run_parameter_in_python_is_a_typed_error_before_any_work(no_model_load, tmp_path, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        nb.score_many("resnet18", ["kriegeskorte2008.hit-rsa"], store=tmp_path / "s.sqlite", **kwargs)


def test_the_largest_accepted_seed_scores(capsys, tmp_path):
    rc, _out, err = cli(capsys, "score", "--model", "fault-net", "--benchmark", "fault.good-rsa",
                        "--store", str(tmp_path / "s.sqlite"), "--seed", str(2**32 - 1), "--device", "cpu", "--quiet")
    assert rc == 0, err
    assert nb.ResultStore(tmp_path / "s.sqlite").rows()["seed"].eq(2**32 - 1).all()


def test_topo_checks_its_flags_too(capsys, no_model_load):
    for flags, phrase in ((["--device", "banana"], "unknown device"), (["--seed", "-2"], "seed must be"),
                          (["--batch-size", "0"], "batch size")):
        rc, _out, err = cli(capsys, "topo", "--model", "fault-net", *flags)
        typed_error(rc, err, phrase)


def test_export_to_a_folder_or_a_missing_folder(capsys, tmp_path):
    rc, _out, err = cli(capsys, "leaderboard", "--store", str(tmp_path / "s.sqlite"), "--export", str(tmp_path),
                        plugin=False)
    typed_error(rc, err, "is a folder", "leaderboard.csv")
    rc, _out, err = cli(capsys, "leaderboard", "--store", str(tmp_path / "s.sqlite"), "--export",
                        str(tmp_path / "no" / "such" / "lb.csv"), plugin=False)
    typed_error(rc, err, "does not exist")
    with pytest.raises(StoreError, match="is a folder"):
        nb.ResultStore(tmp_path / "s.sqlite").export_csv(tmp_path)


def test_export_to_an_unwritable_path(capsys, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        rc, _out, err = cli(capsys, "leaderboard", "--store", str(tmp_path / "s.sqlite"), "--export",
                            str(folder / "lb.csv"), plugin=False)
        typed_error(rc, err, "lb.csv")
    assert not (folder / "lb.csv").exists()
