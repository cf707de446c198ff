"""`neurobench topo` and the topo.* benchmarks, end to end on the 92 objects."""

import neurobench as nb
from neurobench.cli import main

from ..conftest import needs_kriegeskorte

pytestmark = needs_kriegeskorte


def test_topo_command_writes_figures_and_summary(tmp_path, capsys):
    out_dir = tmp_path / "topo"
    code = main(["topo", "--model", "toporesnet18", "--weights", "random", "--layers", "layer4.1", "fc",
                 "--n-perm", "20", "--out", str(out_dir), "--lesion-benchmark", "kriegeskorte2008.hit-rsa",
                 "--lesion-random", "5"])
    assert code == 0
    shown = capsys.readouterr().out
    assert "layer4.1" in shown and "near far" in shown  # headers show underscores as spaces (they wrap there)
    summary = (out_dir / "summary.md").read_text()
    assert "[untrained]" in summary and "Skipped (no sheet positions): fc" in summary
    assert (out_dir / "figures" / "tmaps_layer4-1.png").stat().st_size > 1000
    assert (out_dir / "figures" / "smoothness_layer4-1.svg").exists()
    assert "## Lesions: kriegeskorte2008.hit-rsa" in summary and "Silencing the face patch" in shown


def test_topo_benchmarks_store_like_any_other(tmp_path):
    store = nb.ResultStore(tmp_path / "s.sqlite")
    adapter = nb.load_model("toporesnet18", weights="random")
    res = nb.score(adapter, "topo.near-far-similarity", layers=["layer4.1", "fc"], device="cpu", store=store)
    assert adapter.readout is None  # the benchmark's mean-pooling read-out does not leak
    assert list(res.layers["layer"]) == ["layer4.1"] and res.ceiling is None
    assert "skipped ['fc']" in res.selection
    res = nb.score(adapter, "topo.effective-dim", layers=["layer4.1"], device="cpu", store=store)
    assert res.layers["ci_low"].item() <= res.raw <= res.layers["ci_high"].item()
    board = store.leaderboard(default_only=False)  # scored on chosen layers: stored, not a default configuration
    assert set(board["benchmark"]) == {"topo.near-far-similarity", "topo.effective-dim"}


def test_shuffled_positions_control_is_its_own_leaderboard_entry(tmp_path):
    store = tmp_path / "s.sqlite"
    args = ["score", "--model", "toporesnet18", "--weights", "random", "--benchmark", "topo.near-far-similarity",
            "--layers", "layer4.1", "--store", str(store), "--quiet"]
    assert main(args) == 0
    assert main(args + ["--positions", "shuffled"]) == 0
    board = nb.ResultStore(store).leaderboard(default_only=False)  # on chosen layers: not a default configuration
    assert sorted(board["model"]) == ["toporesnet18-tau10", "toporesnet18-tau10+shuffled-positions-seed0"]
    assert not board["trained"].any()
