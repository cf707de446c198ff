"""Sweep planning without a cluster: checkpoint steps from file names, sweep files (TOML/YAML)
checked key by key, fingerprints, and the SLURM / PBS job scripts dask-jobqueue generates."""

from __future__ import annotations

import pytest

from neurobench.errors import CheckpointStepError, ClusterError, SweepFileError
from neurobench.fingerprint import configuration, differences, fingerprint, summary
from neurobench.sweeps import ClusterSpec, checkpoint_step, checkpoints, read_sweep_file


@pytest.mark.parametrize("name, step", [("step_001000.pt", 1000), ("epoch=3-step=1200.ckpt", 1200),
                                        ("ckpt-500.pt", 500), ("model-step5.pth", 5), ("000300.pth", 300),
                                        ("STEP-7.safetensors", 7)])
def test_step_from_file_name(name, step):
    assert checkpoint_step(name) == step


@pytest.mark.parametrize("name", ["final.pt", "epoch=3.ckpt", "run2-ckpt-500.pt"])
def test_unparseable_step_names_the_file(name):
    with pytest.raises(CheckpointStepError, match=name.replace("[", r"\[")):
        checkpoint_step(name)
    assert checkpoint_step(name, {name: 42}) == 42  # an explicit mapping wins


def test_checkpoints_in_step_order_and_clashes(tmp_path):
    for name in ("step_10.pt", "step_2.pt", "notes.txt", "step_100.ckpt"):
        (tmp_path / name).write_bytes(b"x")
    assert [s for s, _ in checkpoints(str(tmp_path))] == [2, 10, 100]
    assert [s for s, _ in checkpoints(str(tmp_path / "*.pt"))] == [2, 10]
    (tmp_path / "ckpt-10.pt").write_bytes(b"y")
    with pytest.raises(CheckpointStepError, match="both have step 10"):
        checkpoints(str(tmp_path))
    with pytest.raises(SweepFileError, match="no checkpoint files"):
        checkpoints(str(tmp_path / "missing*.pt"))


def test_sweep_file_toml_and_yaml(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('models = ["resnet18", {name = "toporesnet18", weights = "ck/*.pt", steps = {"final.pt" = 9}}]\n'
                    'benchmarks = ["kriegeskorte2008.hit-rsa"]\nplugins = ["my.py"]\nseed = 1\n'
                    '[options]\nn_bootstrap = 100\n[cluster]\nworkers = 4\n')
    spec = read_sweep_file(toml)
    assert [m.name for m in spec["models"]] == ["resnet18", "toporesnet18"]
    assert spec["models"][1].weights == ["ck/*.pt"] and spec["models"][1].steps == {"final.pt": 9}
    assert spec["option_text"] == {"n_bootstrap": "100"} and spec["seed"] == 1
    assert spec["plugins"] == [str(tmp_path / "my.py")] and spec["cluster"] == {"workers": 4}
    yaml = tmp_path / "s.yaml"
    yaml.write_text("models:\n  - resnet18\nbenchmarks: [kriegeskorte2008.hit-rsa]\ncluster:\n  kind: slurm\n")
    assert read_sweep_file(yaml)["cluster"] == {"kind": "slurm"}


@pytest.mark.parametrize("text, key", [('models = ["a"]\nbenchmark = ["b"]\n', "benchmark"),
                                       ('models = [{name = "a", weight = "x"}]\n', "weight"),
                                       ('models = ["a"]\n[cluster]\nnodes = 2\n', "nodes"),
                                       ('benchmarks = ["b"]\n', "models"),
                                       ('models = ["a"]\nseed = "one"\n', "seed"),
                                       ('models = [\n', "not valid TOML")])
def test_sweep_file_errors_name_the_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SweepFileError, match=key):
        read_sweep_file(path)


def test_fingerprint_and_default_configuration():
    base = dict(model="m", weights_sha256="w", benchmark="b", metric_version=1, options={"n_bootstrap": 1000})
    default = configuration(**base, layers=None)
    assert fingerprint(default) == fingerprint(configuration(**base, layers=None))
    assert differences(default, {"n_bootstrap": 1000}) == {}
    partial = configuration(**base, layers=["fc"], seed=1)
    assert fingerprint(partial) != fingerprint(default)
    diff = differences(partial, {"n_bootstrap": 100})
    assert summary(diff) == "layers=fc; seed=1; option n_bootstrap=1000"
    bumped = configuration(**{**base, "metric_version": 2}, layers=None)
    assert fingerprint(bumped) != fingerprint(default)  # a metric whose numbers changed is recomputed


def test_slurm_job_script():
    pytest.importorskip("dask_jobqueue")
    from neurobench.sweeps import jobqueue_cluster

    cluster = jobqueue_cluster(ClusterSpec(kind="slurm", workers=3, cores=8, memory="32GB", gpus=1, queue="gpu",
                                           walltime="02:00:00", account="lab"))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH -n 1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH -t 02:00:00", "#SBATCH --gres=gpu:1"):
        assert line in script, script
    assert "--resources GPU=1" in script and "--nthreads 8" in script and "--memory-limit 29.80GiB" in script
    pbs = jobqueue_cluster(ClusterSpec(kind="pbs", cores=4, memory="8GB", gpus=2, queue="q"))
    try:
        assert "#PBS -q q" in pbs.job_script() and "ngpus=2" in pbs.job_script()
    finally:
        pbs.close()


def test_cluster_spec_checked():
    with pytest.raises(ClusterError, match="workers"):
        ClusterSpec.from_options({"workers": 0})
    with pytest.raises(ClusterError, match="cluster kind"):
        ClusterSpec.from_options({"kind": "kubernetes"})
    assert ClusterSpec.from_options({"scheduler": "tcp://h:8786"}).kind == "scheduler"


def test_readme_sweep_file_parses(tmp_path):
    from tests.test_readme import readme_block

    path = tmp_path / "sweep.toml"
    path.write_text(readme_block("## Running at scale", "toml"))
    spec = read_sweep_file(path)
    assert [m.name for m in spec["models"]] == ["resnet18", "toporesnet18", "toporesnet18"]
    assert spec["models"][2].steps == {"final.pt": 100000} and spec["option_text"] == {"n_bootstrap": "1000"}
    assert spec["cluster"] == {"workers": 2, "threads_per_worker": 1} and spec["memory_budget"] == "8GB"
