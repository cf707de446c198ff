"""Sweeps of many models, checkpoints and benchmarks in one resumable run on Dask
(`neurobench sweep`; README: "Running at scale")."""

from .cluster import ClusterSpec, jobqueue_cluster
from .plan import ModelSpec, Unit, checkpoint_step, checkpoints, read_sweep_file
from .run import SweepFailure, SweepRun, sweep

__all__ = ["ClusterSpec", "ModelSpec", "SweepFailure", "SweepRun", "Unit", "checkpoint_step", "checkpoints",
           "jobqueue_cluster", "read_sweep_file", "sweep"]
