"""Performance harnesses comparing neurobench's numeric cores with their open peers.

`neurobench perf SUITE` runs `neurobench.perf.SUITE.run(args)`. The suites' arguments are
declared here, so that building the command line (`neurobench --help`) imports no harness: each
imports torch and its peers; the suite's module is imported when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

RIDGE_TOOLS = "neurobench,himalaya,sklearn"


def _ridge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=2000, help="stimuli (rows)")
    parser.add_argument("--p", type=int, default=2048, help="features")
    parser.add_argument("--t", type=int, default=10_000, help="targets (voxels / neurons)")
    parser.add_argument("--alphas", default="9",
                        help="a count (logspace(-2, 6, count)) or a comma-separated list")
    parser.add_argument("--folds", type=int, default=5, help="inner cross-validation folds")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--tools", default=RIDGE_TOOLS,
                        help="comma-separated subset of " + RIDGE_TOOLS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--memory-budget", type=float, default=None,
                        help="neurobench memory budget in bytes (default: from free memory)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def _rsa(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-models", type=int, default=2000, help="random model RDMs (default 2000)")
    parser.add_argument("--n-stimuli", type=int, nargs="+", default=[92, 200, 1000],
                        help="stimuli per RDM, one block of rows each (default 92 200 1000: the 92 objects, "
                             "THINGS-MEG's test set, a 1,000-image set)")
    parser.add_argument("--max-gb", type=float, default=1.0,
                        help="fewer model RDMs where n-models x dissimilarities x 8 bytes would exceed this")
    parser.add_argument("--n-subjects", type=int, default=4, help="subject RDMs (default 4)")
    parser.add_argument("--comparators", nargs="+", default=["tau_a", "spearman", "pearson"],
                        help="comparators to time (default: tau_a spearman pearson)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median; >= 3)")
    parser.add_argument("--device", default="cpu", help="device for neurobench (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rsatoolbox", action="store_true",
                        help="time neurobench only (rsatoolbox is a test-only dependency)")


def _extract(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toporesnet18", help="model id (default toporesnet18)")
    parser.add_argument("--n", type=int, default=10_000, help="number of synthetic JPEG images (default 10,000)")
    parser.add_argument("--image-size", type=int, default=256, help="side of the synthetic images (default 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weights", default="random", help="'random' (default) or as for `score`")
    parser.add_argument("--layers", nargs="+", default=None, help="layers to read (default: the model's default)")
    parser.add_argument("--readout", default=None, help="read-out spec, e.g. project=4096 or pool=mean")
    parser.add_argument("--pool", default=None, help="read-out pooling: 'mean' or an int k (or use --readout)")
    parser.add_argument("--project", type=int, default=None, help="sparse random projection dimension")
    parser.add_argument("--workers", default="2", help="loader threads, comma-separated to compare (e.g. 0,1,2)")
    parser.add_argument("--compression", default="lzf",
                        help="cache compression, comma-separated to compare: lzf, gzip (level 1), none")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-process", action="store_true",
                        help="run the variants in this process (quick checks; peak memory is then shared)")


def _pls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=3200, help="images (default 3200)")
    parser.add_argument("--p", type=int, default=2048, help="layer units (default 2048)")
    parser.add_argument("--t", type=int, default=168, help="neuroids (default 168, IT)")
    parser.add_argument("--components", type=int, default=25)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median; >= 3)")
    parser.add_argument("--device", default="cpu", help="device for neurobench (default cpu)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sklearn", action="store_true", help="time neurobench only")


def _alphagrid(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--p", type=int, default=200_000, help="layer units (default 200,000)")
    parser.add_argument("--t", type=int, default=200, help="targets (default 200)")
    parser.add_argument("--snr", type=float, default=0.15, help="signal/noise variance of the targets (default 0.15)")
    parser.add_argument("--folds", type=int, default=5, help="outer folds (default 5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=1)


def _nsdload(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=750, help="trials per session (NSD: 750)")
    parser.add_argument("--roi-voxels", type=int, default=2000, help="ROI size (V1 is a few thousand voxels)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated session file")


def _decoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conditions", type=int, default=12, help="conditions (default 12)")
    parser.add_argument("--trials", type=int, default=20, help="trials per condition (default 20)")
    parser.add_argument("--channels", type=int, default=102, help="sensors (default 102, Neuromag magnetometers)")
    parser.add_argument("--times", type=int, default=10, help="time bins (default 10)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--tools", default="sklearn-lda,sklearn-exact",
                        help="peers to time besides neurobench: sklearn-lda, sklearn-exact")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median; >= 3)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)


def _targets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--targets", type=int, default=2000, help="voxels per subject (default 2000)")
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median; >= 3)")
    parser.add_argument("--seed", type=int, default=0)
def _scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", nargs="+", choices=["nsd", "things-meg"], default=["nsd"],
                        help="dataset shapes: nsd (9,000 + 1,000 stimuli, 40,000 voxels) and/or things-meg "
                             "(21,800 + 200 x 12, 27,000 targets)")
    parser.add_argument("--budgets", default="2GB,4GB,8GB",
                        help="neurobench memory budgets, one fresh run each (comma-separated; 'none' for none)")
    parser.add_argument("--tools", default="neurobench,himalaya", help="comma-separated: neurobench, himalaya")
    parser.add_argument("--alphas", default="9", help="a count (logspace(-2, 6, count)) or a comma-separated list")
    parser.add_argument("--folds", type=int, default=5, help="inner cross-validation folds")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="neurobench's stimulus bootstrap resamples")
    parser.add_argument("--himalaya-targets-batch", type=int, default=10000,
                        help="himalaya's n_targets_batch (targets solved at once)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every size by this factor (quick checks)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the generated data under NEUROBENCH_HOME/perf")


def _kernels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warm-runs", type=int, default=2, help="fresh processes after the cold one (default 2)")


def _gpu(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda", help="the GPU to check (default cuda)")
    parser.add_argument("--only", nargs="+", choices=["tests", "ridge", "rsa", "extract", "scale"],
                        help="run only these steps")


# suite -> (help, argument declarations); the module neurobench.perf.<suite> has run(args)
def _sweep(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=["toporesnet18", "resnet18", "torchvision:alexnet", "torchvision:resnet34"],
                        help="registered models (default: toporesnet18 resnet18 torchvision:alexnet torchvision:resnet34)")
    parser.add_argument("--weights", default="random", help="'random' (default) or as for `score` ('' = published)")
    parser.add_argument("--benchmarks", nargs="+",
                        default=["kriegeskorte2008.hit-rsa", "kriegeskorte2008.mit-rsa", "kriegeskorte2008.hit-trsa"],
                        help="benchmark ids (default: three 92-object benchmarks; NEUROBENCH_MIRROR)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-o", "--option", action="append", metavar="NAME=VALUE", help="benchmark option (repeatable)")


SUITES: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "ridge": ("time cross-validated ridge against himalaya and scikit-learn", _ridge),
    "rsa": ("time RDM comparison against rsatoolbox on the same random RDMs", _rsa),
    "extract": ("activation extraction against a bare torch forward pass", _extract),
    "pls": ("time Brain-Score's PLS mapping against scikit-learn on the same data", _pls),
    "nsdload": ("read one ROI's betas from a full-size NSD session file", _nsdload),
    "targets": ("store and read back every layer's per-target results (Parquet sidecar) against CSV", _targets),
    "decoding": ("time pairwise decoding RDMs (every pair x time bin) against scikit-learn", _decoding),
    "alphagrid": ("ridge alpha grids on a wide layer against the best fixed alpha (accuracy, not speed)",
                  _alphagrid),
    "gpu": ("the GPU check (make gpu-check): GPU tests and the perf suites on cuda, one summary table", _gpu),
    "kernels": ("numba kernels in fresh processes: compiled once (cold), then loaded from the disk cache", _kernels),
    "sweep": ("a sweep on a 2-worker LocalCluster against the same work run one `neurobench score` at a time",
              _sweep),
    "scale": ("dataset-size encoding (NSD / THINGS-MEG shapes) end to end under memory budgets, beside himalaya",
              _scale),
}


def add_arguments(suite: str, parser: argparse.ArgumentParser) -> None:
    """Declare `neurobench perf SUITE`'s arguments on `parser`."""
    SUITES[suite][1](parser)
