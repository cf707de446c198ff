"""Terminal output that fits: golden tables at 80 and 160 columns, no number ever split across
lines, COLUMNS respected when piped, machine-readable formats, nested progress bars whose labels
are plain text."""

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from neurobench import progress
from neurobench.cli import main
from neurobench.terminal import fit_table, interval_text, print_table, render

GOLDEN = Path(__file__).parent / "golden"

# a headline table and a per-layer table as `neurobench score` prints them (after _bounds_view)
HEADLINES = [
    {"benchmark": "kriegeskorte2008.hit-rsa", "best layer": "layer2.1", "raw": 0.016894, "CI": interval_text(-0.0862, 0.12),
     "ceiling [lower, upper]": interval_text(0.24481, 0.47051), "normalized": 0.06901},
    {"benchmark": "kriegeskorte2008.mit-trsa", "best layer": "layer1.0", "raw": 0.094458, "CI": interval_text(0.02607, 0.17044),
     "ceiling [lower, upper]": "-", "normalized": None},
    {"benchmark": "things-meg.occipital-rsa", "best layer": "layer4.1", "raw": -1234.56789, "CI": interval_text(-2000.5, 12.25),
     "ceiling [lower, upper]": interval_text(0.5, 0.75), "normalized": -0.001},
]
LAYERS = pd.DataFrame({"layer": [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)],
                       "raw": [0.0452, 0.0368, 0.0429, 0.0419, 0.0423, 0.0401, 0.0329, 0.0308],
                       "ci_low": [-0.0196, -0.0323, -0.0292, -0.0298, -0.0275, -0.0279, -0.0291, -0.0289],
                       "ci_high": [0.1099, 0.1059, 0.1149, 0.1137, 0.1121, 0.1080, 0.0948, 0.0905],
                       "ceiling": [0.2539] * 8, "normalized": [0.1778, 0.1448, 0.1688, 0.1652, 0.1664, 0.1578,
                                                               0.1295, 0.1212],
                       "brainscore_explained_variance": [0.0081] * 8, "alpha_at_max": [3] * 8})


def _render(data, width, **kw) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    print_table(console, data, **kw)
    return console.file.getvalue()


def _numbers(data) -> list[str]:
    """Every number as the table shows it (inside '[a, b]' cells too)."""
    frame = pd.DataFrame(data)
    cells = []
    for col in frame.columns:
        for v in frame[col]:
            text = "-" if v is None or (isinstance(v, float) and v != v) else (f"{v:.4f}" if isinstance(v, float) else str(v))
            cells += re.findall(r"-?\d+\.\d+", text)
    return cells


@pytest.mark.parametrize("width", [80, 160])
@pytest.mark.parametrize("name,data,keep", [
    ("headlines", HEADLINES, ("raw", "CI", "ceiling [lower, upper]", "normalized")),
    ("layers", LAYERS, ()),
])
def test_golden_tables(name, data, keep, width):
    text = _render(data, width, title="golden", keep=keep)
    assert max(len(line) for line in text.splitlines()) <= width
    golden = GOLDEN / f"{name}_{width}.txt"
    if not golden.exists():  # first run writes the golden file; review it and commit it
        golden.write_text(text)
    assert text == golden.read_text()
    dropped = re.search(r"not shown at \d+ columns: ([^;]+);", text.replace("\n", " "))
    shown = pd.DataFrame(data)
    if dropped:
        gone = [c.strip() for c in dropped.group(1).split(",")]
        shown = shown.drop(columns=[c for c in shown.columns if c in gone])
    for number in _numbers(shown):
        assert number in text, f"{number} split or missing at {width} columns:\n{text}"


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
def test_no_number_is_ever_split(width):
    for data in (HEADLINES, LAYERS):
        table, dropped = fit_table(data, width, keep=())
        text = _render(data, width)
        assert max(len(line) for line in text.splitlines()) <= width
        shown = pd.DataFrame(data).drop(columns=dropped)
        for number in _numbers(shown):
            assert number in text, f"{number} split at {width} columns:\n{text}"


def test_numbers_are_never_cropped_into_ellipses():
    text = _render(HEADLINES, 80, keep=("raw", "CI", "ceiling [lower, upper]", "normalized"))
    assert "…" not in text


def test_machine_readable_formats():
    rows = [{"a": 1.5, "b": "x|y", "c": float("nan")}, {"a": 2, "b": "z", "c": None}]
    assert [json.loads(line) for line in render(rows, "json").splitlines()] == [
        {"a": 1.5, "b": "x|y", "c": None}, {"a": 2, "b": "z", "c": None}]
    assert render(rows, "csv").splitlines() == ["a,b,c", "1.5,x|y,", "2,z,"]
    assert render(rows, "markdown").splitlines()[2] == "| 1.5000 | x\\|y | - |"


def test_piped_output_follows_columns(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "70")
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 70
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", "models"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) > 120  # not forced to 160 or 80


def test_list_filters_and_json(capsys):
    assert main(["list", "models", "--family", "torchvision", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {r["family"] for r in rows} == {"torchvision"} and "resnet18" in {r["model"] for r in rows}
    assert main(["list", "benchmarks", "--modality", "meg", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {r["modality"] for r in rows} == {"meg"}
    assert {"cichy2014.meg-rsa", "things-meg.all-rsa"} <= {r["benchmark"] for r in rows}
    assert main(["list", "benchmarks", "--modality", "fmri", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "benchmark,data,to download,modality,description"
    assert any(line.startswith("kriegeskorte2008.hit-rsa,") and ",fmri," in line for line in lines)
    assert not any(line.startswith("kriegeskorte2008.mit-rsa,") for line in lines)  # monkey IT: spikes


def test_nested_progress_bars_with_markup_like_labels():
    progress.set_progress(True)
    try:
        with progress.progress_bar(2, "resnet18 [untrained]: activations") as outer:
            live = progress._live
            with progress.progress_bar(3, "[bold]layer1[/bold]") as inner:
                assert progress._live is live  # one live display: the inner bar is one more line
                inner.advance()
                descriptions = [t.description for t in live.tasks]
                assert descriptions == ["resnet18 \\[untrained]: activations", "\\[bold]layer1\\[/bold]"]
            outer.advance()
            assert len(live.tasks) == 1
        assert progress._live is None and progress._depth == 0
    finally:
        progress.set_progress(None)


def test_score_prints_the_selection_note_both_ceiling_bounds_and_json(tmp_path, capsys, monkeypatch):
    from .miniature import example_plugin

    monkeypatch.setenv("COLUMNS", "80")
    store = str(tmp_path / "s.sqlite")
    with example_plugin("my_plugin_for_terminal_tests"):
        assert main(["score", "--model", "tiny-convnet", "--benchmark", "toy.colour-rsa", "--store", store,
                     "-o", "n_bootstrap=50"]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 80
        flat = " ".join(out.split())
        assert "selection: toy.colour-rsa: layer chosen on a random half" in flat  # the note, under the headline
        assert "every layer on all stimuli" in flat and "held-out score of the selected layer" in flat
        assert main(["score", "--model", "tiny-convnet", "--benchmark", "toy.colour-rsa", "--store", store,
                     "-o", "n_bootstrap=50", "--format", "json"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [r["row_kind"] for r in rows]
    assert kinds == ["layer"] * 3 + ["headline"]
    head = rows[-1]
    assert head["model"] == "tiny-convnet" and head["trained"] is False
    assert {"ceiling_lower", "ceiling_upper", "selection", "normalization", "interval", "notes"} <= set(head)
    assert head["selection"].startswith("layer chosen on a random half")
