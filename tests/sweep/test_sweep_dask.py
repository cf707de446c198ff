"""Sweeps on a real Dask LocalCluster of 2 worker processes: plugin models reach the workers,
every result is stored exactly once, the same command again computes nothing, a worker killed
mid-unit (SIGKILL) loses nothing and duplicates nothing, a model that raises leaves failure rows
and the others complete; checkpoint trajectories are stored with their step."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("distributed", reason="neurobench sweep needs Dask distributed (pip install 'neurobench[sweep]')")

import neurobench as nb  # noqa: E402
from neurobench.cli import main  # noqa: E402

PLUGIN = str(Path(__file__).with_name("plugin.py"))
MODELS = ["sweeptest-a", "sweeptest-b", "sweeptest-c"]
BENCHMARKS = ["sweeptest.hue-spearman", "sweeptest.hue-pearson", "sweeptest.hue2-spearman"]
N_LAYERS = 3


@pytest.fixture(scope="module")
def flags(tmp_path_factory):
    """The folder the plugin's forward passes read (`sleep`) and mark (one file per worker pid)."""
    folder = tmp_path_factory.mktemp("sweep_flags")
    return folder


@pytest.fixture(scope="module")
def client(flags):
    from distributed import Client, LocalCluster

    old = os.environ.get("SWEEPTEST_PIDS")
    os.environ["SWEEPTEST_PIDS"] = str(flags)  # inherited by the worker processes
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
    if old is None:
        os.environ.pop("SWEEPTEST_PIDS", None)


def _counts(path: Path) -> tuple[int, int, int, int]:
    """(results, distinct fingerprints, scores rows, failure rows)."""
    with sqlite3.connect(path) as con:
        return (con.execute("SELECT COUNT(*) FROM results").fetchone()[0],
                con.execute("SELECT COUNT(DISTINCT fingerprint) FROM results").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM scores").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM failures").fetchone()[0])


def test_sweep_exactly_once_and_resumable(client, tmp_path):
    store = tmp_path / "sweep.sqlite"
    events = []
    run = nb.sweep([*MODELS, "sweeptest-broken"], BENCHMARKS, plugins=[PLUGIN], store=store, device="cpu",
                   client=client, on_event=lambda kind, value: events.append(kind))
    assert run.added == 9 and run.units == 4 and run.skipped == 0
    assert {(f.model, f.benchmark) for f in run.failures} == {("sweeptest-broken", b) for b in BENCHMARKS}
    assert {f.error_type for f in run.failures} == {"ExtractionError"}
    assert "forward pass" in run.failures[0].message
    assert _counts(store) == (9, 9, 9 * (N_LAYERS + 1), 3)
    assert events[0] == "dashboard" and events.count("stored") == 9 and events.count("failed") == 3
    board = nb.ResultStore(store).leaderboard()
    assert len(board) == 9 and set(board["configuration"]) == {"default"}
    # the same command again computes nothing: no unit is submitted
    again = nb.sweep([*MODELS, "sweeptest-broken"], BENCHMARKS, plugins=[PLUGIN], store=store, device="cpu",
                     client=client)
    assert (again.units, again.added, again.skipped, again.failures) == (0, 0, 12, [])
    assert _counts(store) == (9, 9, 9 * (N_LAYERS + 1), 3)
    # retrying the failures computes only them, and replaces their rows
    retried = nb.sweep(["sweeptest-broken"], BENCHMARKS, plugins=[PLUGIN], store=store, device="cpu", client=client,
                       retry_failed=True)
    assert retried.units == 1 and len(retried.failures) == 3 and _counts(store)[3] == 3


def test_killed_worker_loses_and_duplicates_nothing(client, flags, tmp_path):
    store = tmp_path / "killed.sqlite"
    for f in flags.iterdir():
        f.unlink()
    (flags / "sleep").write_text("2")  # every forward pass takes 2 s: the test can kill a worker inside one
    submitted = {}

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline:
            pids = [int(p.name) for p in flags.iterdir() if p.name.isdigit()]
            if pids:
                os.kill(pids[0], signal.SIGKILL)  # a worker process started by this test's cluster
                submitted["killed"] = pids[0]
                return
            time.sleep(0.05)

    import threading

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        run = nb.sweep(MODELS, BENCHMARKS, plugins=[PLUGIN], store=store, device="cpu", client=client, cache=False)
    finally:
        thread.join()
        (flags / "sleep").unlink()
    assert "killed" in submitted
    assert run.failures == [] and run.added == 9
    assert _counts(store) == (9, 9, 9 * (N_LAYERS + 1), 0)


def test_checkpoint_trajectory_in_step_order(client, tmp_path):
    """A folder of checkpoints: each is scored, labelled and stored with its step."""
    from neurobench.registry import load_plugin

    assert load_plugin(PLUGIN) is None
    folder = tmp_path / "run"
    folder.mkdir()
    initial = nb.load_model("sweeptest-a").module.state_dict()
    for step in (2000, 500, 1000):  # one training run's checkpoints, written out of order
        generator = torch.Generator().manual_seed(step)
        state = {k: torch.randn(v.shape, generator=generator) for k, v in initial.items()}
        torch.save(state, folder / f"step_{step:06d}.pt")
    store = tmp_path / "traj.sqlite"
    run = nb.sweep(["sweeptest-a"], BENCHMARKS[:1], weights=[str(folder)], plugins=[PLUGIN], store=store,
                   device="cpu", client=client)
    assert run.added == 3, (run.units, run.skipped, run.duplicates, run.failures)
    results = nb.ResultStore(store).results()
    assert sorted(results["step"]) == [500, 1000, 2000]
    assert set(results["weights_label"]) == {"step_000500.pt", "step_001000.pt", "step_002000.pt"}
    assert results["weights_sha256"].nunique() == 3
    board = nb.ResultStore(store).leaderboard()
    assert list(board.sort_values("step")["step"]) == [500, 1000, 2000]
    assert len(nb.ResultStore(store).results(step=1000)) == 1


def test_cli_sweep_file_own_local_cluster(tmp_path, capsys):
    """`neurobench sweep --file` with its own LocalCluster of 2 workers; a plugin named in the file."""
    store = tmp_path / "cli.sqlite"
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(f'plugins = ["{PLUGIN}"]\nmodels = ["sweeptest-a", {{name = "sweeptest-b"}}]\n'
                          f'benchmarks = ["{BENCHMARKS[0]}"]\ndevice = "cpu"\n[options]\nn_bootstrap = 20\n'
                          '[cluster]\nworkers = 2\n')
    assert main(["sweep", "--file", str(sweep_file), "--store", str(store), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "2 result(s) added" in out.out and "dashboard" in out.err
    results = nb.ResultStore(store).results()
    assert len(results) == 2 and set(results["config_summary"]) == {"option n_bootstrap=20"}
    assert nb.ResultStore(store).leaderboard().empty  # not the default configuration
    assert len(nb.ResultStore(store).leaderboard(default_only=False)) == 2


def test_existing_scheduler_by_address(client, tmp_path):
    """`--scheduler tcp://...`: the sweep connects to a running cluster instead of starting one."""
    store = tmp_path / "remote.sqlite"
    address = client.scheduler.address
    assert address.startswith("tcp://")
    run = nb.sweep(["sweeptest-b"], BENCHMARKS[:2], plugins=[PLUGIN], store=store, device="cpu",
                   cluster={"scheduler": address})
    assert run.added == 2 and run.failures == []
    assert len(client.scheduler_info()["workers"]) == 2  # the cluster is left running for its owner
