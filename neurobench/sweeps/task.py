"""What runs on a Dask worker: one (model, weights) scored on its benchmarks.

A worker never opens the results store: `run_unit` returns one `Outcome` per benchmark (a
ScoreResult, a skip or a failure) to the client, the store's only writer. Plugins (`--plugin`)
are imported in every worker process before its first unit (`load_plugins`, once per process),
and the client's `NEUROBENCH_HOME` / `NEUROBENCH_MIRROR` are set on the worker when the client
passes them (a cluster on other machines then shares the activation cache only if that folder
is on a shared filesystem).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..fingerprint import fingerprint
from .plan import Unit

log = logging.getLogger(__name__)

_loaded: set[str] = set()  # plugins imported in this process
# Models are built one at a time per process: factories seed torch's process-wide RNG (random
# weights, seeded heads), so two threads of one worker building at once would get other weights.
_BUILD_LOCK = threading.Lock()


@dataclass
class Outcome:
    """What a unit did for one benchmark: `result` (a ScoreResult), or `error_type` / `message`
    (it raised), or `skipped` (its fingerprint is stored already)."""

    benchmark: str
    request: str
    result: Any = None
    fingerprint: str | None = None
    error_type: str | None = None
    message: str | None = None
    skipped: bool = False


def load_plugins(specs: Sequence[str]) -> None:
    """Import each plugin once in this process; one that fails raises (the unit then fails with
    its message: a plugin the workers cannot import is a failure, never a silent skip)."""
    from ..errors import RegistrationError
    from ..registry import load_plugin

    for spec in specs:
        if spec in _loaded:
            continue
        problem = load_plugin(spec)
        if problem is not None:
            raise RegistrationError(f"plugin {spec!r} failed to load on worker (pid {os.getpid()}): {problem}")
        _loaded.add(spec)


def run_unit(unit: Unit, settings: Mapping[str, Any], plugins: Sequence[str] = (), env: Mapping[str, str] | None = None,
             done: frozenset[str] = frozenset()) -> list[Outcome]:
    """Load the unit's model once and score each of its benchmarks (`settings`: layers, device,
    batch_size, seed, memory_budget, option_text, cache, positions, readout, precision); a
    benchmark whose configuration fingerprint is in `done` is skipped."""
    for key, value in (env or {}).items():
        os.environ[key] = value
    if settings.get("torch_threads"):
        import torch

        torch.set_num_threads(int(settings["torch_threads"]))
    try:
        with _BUILD_LOCK:
            load_plugins(plugins)
            adapter = _adapter(unit, settings)
    except Exception as exc:  # a model that cannot be built fails all its benchmarks, the sweep goes on
        return [_failed(b, r, exc) for b, r in zip(unit.benchmarks, unit.requests)]
    outcomes = []
    for bench_id, request in zip(unit.benchmarks, unit.requests):
        outcomes.append(_score_one(adapter, bench_id, request, settings, done))
    return outcomes


def _adapter(unit: Unit, settings: Mapping[str, Any]):
    from ..api import load_model
    from ..models.positions import with_positions

    seed = settings.get("seed", 0)
    adapter = with_positions(load_model(unit.model, weights=unit.weights, seed=seed), settings.get("positions", "model"),
                             seed)
    if settings.get("readout"):
        adapter.with_readout(settings["readout"])
    if settings.get("precision"):
        adapter.with_precision(settings["precision"])
    return adapter


def _score_one(adapter, bench_id: str, request: str, settings: Mapping[str, Any], done: frozenset[str]) -> Outcome:
    from ..api import check_run_parameters, load_benchmark

    fp = None
    try:
        bench = load_benchmark(bench_id)
        if settings.get("option_text"):
            bench.configure_from_text(dict(settings["option_text"]))
        params = check_run_parameters(settings.get("device", "auto"), settings.get("batch_size", 32),
                                      settings.get("seed", 0), settings.get("memory_budget"))
        fp = fingerprint(bench.configuration(adapter, settings.get("layers"), params.seed))
        if fp in done:
            return Outcome(bench_id, request, fingerprint=fp, skipped=True)
        result = bench.score(adapter, layers=settings.get("layers"), batch_size=params.batch_size, device=params.device,
                             seed=params.seed, cache=settings.get("cache", True), memory_budget=params.memory_budget)
    except Exception as exc:  # recorded as a failure row with its type; the sweep goes on
        outcome = _failed(bench_id, request, exc)
        outcome.fingerprint = fp
        return outcome
    return Outcome(bench_id, request, result=result, fingerprint=fp)


def _failed(bench_id: str, request: str, exc: BaseException) -> Outcome:
    log.info("%s failed: %s: %s", bench_id, type(exc).__name__, exc)
    return Outcome(bench_id, request, error_type=type(exc).__name__, message=str(exc) or repr(exc))
