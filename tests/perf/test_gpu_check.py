"""`make gpu-check` (`neurobench perf gpu`): its CPU-side logic, checked without a GPU."""

import sys

import pytest

from neurobench.perf import gpu


def test_every_perf_step_runs_on_the_gpu_within_five_minutes():
    plan = gpu.steps("cuda")
    assert [s.name for s in plan] == ["tests", "ridge", "rsa", "extract", "scale"]
    for step in plan:
        if step.suite is not None:
            assert step.argv[:3] == ["neurobench.cli", "perf", step.suite]
            assert step.argv[step.argv.index("--device") + 1] == "cuda"
    assert plan[0].argv[:3] == ["pytest", "-m", "gpu"]
    assert sum(s.timeout for s in plan) < 300


def test_figures_pick_the_key_numbers_and_report_errors():
    step = gpu.Step("ridge", [], 1, "ridge", rows=[
        {"tool": "neurobench", "median_s": 0.81234, "gpu_peak_mb": 900.0, "mean_r": 0.39312, "speedup_vs_this": 1.0},
        {"tool": "himalaya", "error": "CUDA out of memory"}])
    assert gpu.figures(step) == "neurobench 0.812 900 0.393 1; himalaya: error CUDA out of memory"
    assert gpu.figures(gpu.Step("tests", [], 1), "....\n3 passed, 1 skipped in 2.0s\n") == "3 passed, 1 skipped in 2.0s"


def test_a_step_runs_in_its_own_process_and_its_rows_come_back(monkeypatch):
    step = gpu.Step("rsa", ["neurobench.cli", "perf", "rsa", "--device", "cpu", "--n-stimuli", "8", "--n-models", "3",
                            "--skip-rsatoolbox", "--comparators", "pearson"], 120, "rsa")
    row = gpu.run_step(step, env=dict(__import__("os").environ))
    assert row["status"] == "ok" and row["figures"].startswith("8 pearson ")
    slow = gpu.Step("sleep", ["timeit", "-n", "1", "import time; time.sleep(5)"], 1)
    assert gpu.run_step(slow, env={})["status"] == "timed out after 1 s"
    bad = gpu.Step("bad", ["neurobench.cli", "perf", "rsa", "--comparators", "nope"], 60, "rsa")
    assert gpu.run_step(bad, env=dict(__import__("os").environ))["status"] == "failed"


def test_without_cuda_every_step_is_skipped_with_the_reason():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from neurobench.cli import main

    assert main(["perf", "gpu"]) == 0


def test_gpu_tests_are_collected_and_skip_here():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--co",
                          "tests/test_gpu.py"], capture_output=True, text=True)
    assert "test_ridge_on_cuda_matches_cpu" in out.stdout
