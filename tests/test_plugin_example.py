"""The README's worked example: a separate module registers a model and a benchmark."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

import neurobench as nb
from neurobench.cli import main
from neurobench.registry import benchmarks, models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_plugin.py"


@pytest.fixture
def example_module():
    spec = importlib.util.spec_from_file_location("my_plugin_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    models.remove("tiny-convnet")
    benchmarks.remove("toy.colour-rsa")


def test_python_api(example_module, tmp_path):
    result = nb.score("tiny-convnet", "toy.colour-rsa", device="cpu", store=tmp_path / "s.sqlite")
    assert set(result.layers["layer"]) == {"1", "3", "5"}
    assert result.ceiling is None and "no noise ceiling" in result.ceiling_note
    assert -1 <= result.raw <= 1 and result.ci_low <= result.ci_high
    assert len(nb.ResultStore(tmp_path / "s.sqlite").leaderboard()) == 1


def test_cli_with_plugin_file(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    try:
        code = main(["--plugin", str(EXAMPLE), "score", "--model", "tiny-convnet", "--benchmark", "toy.colour-rsa",
                     "--store", str(store), "--quiet"])
        assert code == 0
        assert main(["--plugin", str(EXAMPLE), "list", "models"]) == 0
        listing = capsys.readouterr().out
        assert "tiny-convnet" in listing
        assert main(["leaderboard", "--store", str(store), "--export", str(tmp_path / "lb.csv")]) == 0
        exported = pd.read_csv(tmp_path / "lb.csv")
        assert list(exported["model"]) == ["tiny-convnet"] and list(exported["trained"]) == [False]
    finally:
        models.remove("tiny-convnet")
        benchmarks.remove("toy.colour-rsa")
