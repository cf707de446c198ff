"""The Dask cluster a sweep runs on: an embedded LocalCluster of worker processes (default), an
existing scheduler (`tcp://host:8786`), or SLURM / PBS / LSF jobs through dask-jobqueue.

GPU workers declare the Dask resource `GPU` (`resources={"GPU": n}` on a LocalCluster,
`--resources GPU=n` on jobqueue workers); a sweep with `gpus > 0` submits each unit with
`resources={"GPU": 1}`, so GPU work lands only on those workers.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import ClusterError

log = logging.getLogger(__name__)

JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster"}


@dataclass
class ClusterSpec:
    """Where a sweep runs. `kind`: 'local' (a LocalCluster of `workers` processes with
    `threads_per_worker` threads each), 'scheduler' (connect to `scheduler`), or 'slurm' / 'pbs' /
    'lsf' (`workers` jobs, each one worker with `cores`, `memory`, `gpus`, in `queue`, for
    `walltime`)."""

    kind: str = "local"
    workers: int = 2
    threads_per_worker: int = 1
    scheduler: str | None = None
    cores: int = 4
    memory: str = "16GB"
    gpus: int = 0
    queue: str | None = None
    walltime: str = "04:00:00"
    account: str | None = None
    job_extra: list[str] = field(default_factory=list)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ClusterSpec:
        options = dict(options)
        if options.get("scheduler"):
            options["kind"] = "scheduler"
        kind = options.pop("kind", None) or ("scheduler" if options.get("scheduler") else "local")
        options.pop("processes", None)
        spec = cls(kind=kind, **{k: v for k, v in options.items() if v is not None})
        spec.check()
        return spec

    def check(self) -> None:
        if self.kind not in ("local", "scheduler", *JOBQUEUE):
            raise ClusterError(f"cluster kind must be local, scheduler or one of {sorted(JOBQUEUE)}, got {self.kind!r}")
        for name in ("workers", "threads_per_worker", "cores"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ClusterError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {value!r}")
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise ClusterError(f"--gpus must be a whole number >= 0, got {self.gpus!r}")
        if self.kind == "scheduler" and not self.scheduler:
            raise ClusterError("an existing cluster needs --scheduler tcp://host:8786")


def dashboard_available() -> bool:
    """Dask serves its dashboard only with bokeh installed."""
    return importlib.util.find_spec("bokeh") is not None


def jobqueue_cluster(spec: ClusterSpec):
    """The dask-jobqueue cluster object for SLURM / PBS / LSF (no job is submitted until it is
    scaled); its `job_script()` is what each job runs."""
    try:
        import dask_jobqueue
    except ModuleNotFoundError:
        raise ClusterError("--cluster slurm/pbs/lsf needs dask-jobqueue: pip install 'neurobench[sweep]'") from None
    cls = getattr(dask_jobqueue, JOBQUEUE[spec.kind])
    extra = list(spec.job_extra)
    worker_args = []
    if spec.gpus:
        if spec.kind == "slurm":
            extra.append(f"--gres=gpu:{spec.gpus}")
        elif spec.kind == "pbs":
            extra.append(f"-l ngpus={spec.gpus}")
        else:
            extra.append(f'-gpu "num={spec.gpus}"')
        worker_args = ["--resources", f"GPU={spec.gpus}"]
    kwargs: dict[str, Any] = {"cores": spec.cores, "processes": 1, "memory": spec.memory, "walltime": spec.walltime,
                              "job_extra_directives": extra, "worker_extra_args": worker_args}
    if spec.queue:
        kwargs["queue"] = spec.queue
    if spec.account:
        kwargs["account"] = spec.account
    return cls(**kwargs)


def start(spec: ClusterSpec):
    """(client, cluster or None): a connected Dask client; the caller closes both."""
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError:
        raise ClusterError("neurobench sweep needs Dask distributed: pip install 'neurobench[sweep]'") from None
    try:
        if spec.kind == "scheduler":
            return Client(spec.scheduler, timeout="30s"), None
        if spec.kind in JOBQUEUE:
            cluster = jobqueue_cluster(spec)
            cluster.scale(jobs=spec.workers)
        else:
            cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=spec.threads_per_worker, processes=True,
                                   resources={"GPU": spec.gpus} if spec.gpus else None,
                                   dashboard_address=":0")
        return Client(cluster), cluster
    except ClusterError:
        raise
    except (OSError, TimeoutError) as exc:
        where = spec.scheduler or spec.kind
        raise ClusterError(f"cannot reach the Dask cluster ({where}): {exc}; check the address and that the "
                           "scheduler runs") from None


def dashboard_text(client) -> str:
    """The dashboard's address, or why there is none."""
    if not dashboard_available():
        return "no Dask dashboard: it needs bokeh (pip install bokeh)"
    link = getattr(client, "dashboard_link", None)
    return f"Dask dashboard: {link}" if link else "no Dask dashboard address"
