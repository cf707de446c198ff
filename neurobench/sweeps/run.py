"""`sweep`: models x weights x benchmarks in one resumable run on Dask.

The unit of work is one (model, weights) with all its benchmarks: a worker loads the model once
and extracts each stimulus set once (benchmarks sharing a stimulus set share the activation
cache). Units are not split further (e.g. per subject): a unit's benchmarks are the natural
grain for the activation cache, per-subject splits would extract the same stimuli on several
workers, and recombining per-subject bootstraps exactly needs the whole bootstrap draw in one
place.

Exactly once: before anything starts, the client drops every (model, weights, benchmark) whose
request key is answered in the store (`plan.request_key`), and workers skip configurations whose
fingerprint is stored; results travel back to the client, the store's only writer, which adds
each in one transaction with insert-or-ignore on its fingerprint. A worker that dies mid-unit
has the unit rerun elsewhere (Dask reschedules the tasks of a lost worker); a model or benchmark
that raises becomes a failure row (error type and message) and the sweep goes on; after Ctrl-C
the same command resumes where it stopped (interrupted units stored nothing). A configuration
that failed is not tried again unless asked (`retry_failed`, `--retry-failed`): the same command
computes nothing twice.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NeurobenchError
from .cluster import ClusterSpec, dashboard_text, start
from .plan import ModelSpec, Unit, request_key, weights_units
from .task import Outcome, run_unit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepFailure:
    """A (model, weights, benchmark) that raised: its error's type and message."""

    model: str
    weights: str
    step: int | None
    benchmark: str
    error_type: str
    message: str


@dataclass
class SweepRun:
    """What a sweep did: how many results it added to the store, how many configurations were
    stored already (`skipped`: answered before the sweep; `duplicates`: computed, but another
    writer stored the same fingerprint first), its failures, units and wall time."""

    run_id: str
    store: str
    units: int = 0
    added: int = 0
    skipped: int = 0
    duplicates: int = 0
    failures: list[SweepFailure] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    dashboard: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return (f"sweep {self.run_id[:12]}: {self.added} result(s) added, {self.skipped} stored already, "
                f"{self.duplicates} stored meanwhile by another writer, {len(self.failures)} failed; "
                f"{self.units} unit(s) in {self.wall_s:.1f}s")


def _model_specs(models, weights) -> list[ModelSpec]:
    if isinstance(models, (str, ModelSpec)):
        models = [models]
    if not models:
        raise NeurobenchError("sweep: no models given (--model NAME ... or a sweep file's 'models')")
    specs = []
    for m in models:
        if isinstance(m, ModelSpec):
            specs.append(m)
        elif isinstance(m, str):
            specs.append(ModelSpec(m, list(weights) if weights else [None]))
        else:
            raise NeurobenchError(f"sweep: a model is a registered name or a ModelSpec, got {type(m).__name__}")
    return specs


def sweep(
    models: Sequence[str | ModelSpec] | str,
    benchmarks: Sequence[str] | None = None,
    *,
    weights: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    memory_budget: int | None = None,
    option_text: Mapping[str, str] | None = None,
    store: Any = True,
    cache: bool = True,
    positions: str = "model",
    readout: str | None = None,
    precision: str | None = None,
    plugins: Sequence[str] = (),
    cluster: ClusterSpec | Mapping[str, Any] | None = None,
    client: Any = None,
    retry_failed: bool = False,
    on_event: Callable[[str, Any], Any] | None = None,
) -> SweepRun:
    """Score every model (each of its weights: published, 'random', a checkpoint, or a folder /
    glob of checkpoints scored in step order) on every benchmark, on a Dask cluster; returns a
    SweepRun. Resumable and exactly-once (module docstring).

    `models`: registered names (with `weights` applying to each) or `ModelSpec`s (a sweep file's
    models, with their own weights and step mappings). `benchmarks`: ids (None: every benchmark
    whose data is local). `option_text` (command-line text) sets benchmark options; `layers`,
    `seed`, `memory_budget`, `readout`, `precision`, `positions`, `device`, `batch_size`, `cache`
    as in `score_many`, passed to each score. `plugins`: modules or .py files imported on the
    client and on every worker. `cluster`: a ClusterSpec or its options (default: a LocalCluster
    of 2 worker processes); `client`: an existing `distributed.Client` to use instead.
    A configuration that failed before is skipped unless `retry_failed` (its failure row stays
    until a retry succeeds). `on_event(kind, value)` is called with ('dashboard', text), ('stored', (unit, outcome)),
    ('failed', SweepFailure), ('progress', counts dict) as the sweep goes.
    """
    from ..api import _configure, _select, check_run_parameters
    from ..registry import load_plugin
    from ..registry import models as model_registry
    from ..stores import open_store

    start_time = time.perf_counter()
    emit = on_event or (lambda kind, value: None)
    check_run_parameters("cpu", batch_size, seed, memory_budget)  # the device is resolved on each worker
    for spec in plugins:
        problem = load_plugin(spec)
        if problem is not None:
            raise NeurobenchError(f"--plugin {spec} failed to load: {problem}")
    specs = _model_specs(models, weights)
    for spec in specs:
        model_registry.get(spec.name)  # a misspelt model fails before anything starts
    chosen, _skipped, _failures = _select(benchmarks)
    _configure(chosen, None, option_text)
    target = open_store(None if store is True else store)
    run = SweepRun(run_id=uuid.uuid4().hex, store=str(getattr(target, "path", target)))
    answered = target.requests()
    if not retry_failed:
        answered |= {k for k in target.failures()["key"] if isinstance(k, str)}
    units = []
    for spec in specs:
        for arg, label, identity, step in _weights(spec):
            requests = {b.identifier: request_key(
                model=spec.name, weights=identity, benchmark=b.identifier, metric_version=b.metric_version,
                layers=layers, options=b.option_values(), seed=seed, readout=readout, precision=precision,
                positions=positions) for b in chosen}
            todo = [b for b, r in requests.items() if r not in answered]
            run.skipped += len(requests) - len(todo)
            if todo:
                units.append(Unit(spec.name, arg, label, step, tuple(todo), tuple(requests[b] for b in todo)))
    run.units = len(units)
    total = sum(len(u.benchmarks) for u in units)
    if not units:
        run.wall_s = time.perf_counter() - start_time
        return run
    settings = {"layers": list(layers) if layers else None, "device": device, "batch_size": batch_size, "seed": seed,
                "memory_budget": memory_budget, "option_text": dict(option_text or {}), "cache": cache,
                "positions": positions, "readout": readout, "precision": precision}
    spec = cluster if isinstance(cluster, ClusterSpec) else ClusterSpec.from_options(dict(cluster or {}))
    # Dask starts workers with OMP_NUM_THREADS=1: give torch the threads each worker was given
    settings["torch_threads"] = {"local": spec.threads_per_worker, "scheduler": None}.get(spec.kind, spec.cores)
    env = {k: os.environ[k] for k in ("NEUROBENCH_HOME", "NEUROBENCH_MIRROR") if k in os.environ}
    if spec.kind != "local" and client is None:
        env = {}  # workers elsewhere keep their own paths (README: "Running at scale")
    plugin_paths = [str(Path(p).resolve()) if p.endswith(".py") else p for p in plugins]
    own = client is None
    cluster_obj = None
    if own:
        client, cluster_obj = start(spec)
    try:
        run.dashboard = dashboard_text(client)
        emit("dashboard", run.dashboard)
        gpu = spec.gpus > 0  # workers declared GPU resources: units run only there (never wait for none)
        done = frozenset(target.fingerprints())
        futures = {client.submit(run_unit, unit, settings, plugin_paths, env, done, pure=False,
                                 key=f"neurobench-{unit.model}-{unit.weights_label}-{uuid.uuid4().hex[:8]}",
                                 resources={"GPU": 1} if gpu else None): unit for unit in units}
        _collect(client, futures, target, run, total, emit)
    finally:
        if own:
            client.close()
            if cluster_obj is not None:
                cluster_obj.close()
    run.wall_s = time.perf_counter() - start_time
    return run


def _weights(spec: ModelSpec):
    for w in spec.weights:
        yield from weights_units(spec.name, w, spec.steps)


def _collect(client, futures: dict, target, run: SweepRun, total: int, emit) -> None:
    """Store each outcome as its unit finishes (the client is the only writer)."""
    from distributed import as_completed

    from ..progress import progress_bar

    counts = {"done": 0, "running": len(futures), "failed": 0, "skipped": 0}

    def text() -> str:
        return (f"sweep: {counts['done']} done, {counts['running']} unit(s) running, {counts['failed']} failed, "
                f"{counts['skipped']} skipped")

    try:
        with progress_bar(total, text(), eta=True) as bar:
            for future in as_completed(list(futures)):
                unit = futures[future]
                counts["running"] -= 1
                try:
                    outcomes = future.result()
                except Exception as exc:  # the unit itself was lost (e.g. killed too often): every benchmark fails
                    outcomes = [Outcome(b, r, error_type=type(exc).__name__, message=str(exc))
                                for b, r in zip(unit.benchmarks, unit.requests)]
                for outcome in outcomes:
                    _store_outcome(target, run, unit, outcome, counts, emit)
                    bar.advance()
                bar.describe(text())
                emit("progress", dict(counts))
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        raise


def _store_outcome(target, run: SweepRun, unit: Unit, outcome: Outcome, counts: dict, emit) -> None:
    if outcome.skipped:
        run.skipped += 1
        counts["skipped"] += 1
        return
    if outcome.result is not None:
        added = target.insert(outcome.result, run.run_id, step=unit.step, weights_label=unit.weights_label,
                              request=outcome.request)
        if added:
            run.added += 1
            run.fingerprints.append(outcome.fingerprint)
        else:
            run.duplicates += 1
        counts["done"] += 1
        emit("stored", (unit, outcome))
        return
    failure = SweepFailure(unit.model, unit.weights_label, unit.step, outcome.benchmark, outcome.error_type or "Error",
                           outcome.message or "")
    target.add_failure(outcome.request, model=unit.model, benchmark=outcome.benchmark, error_type=failure.error_type,
                       message=failure.message, run_id=run.run_id, weights_label=unit.weights_label, step=unit.step)
    run.failures.append(failure)
    counts["failed"] += 1
    emit("failed", failure)
