"""The Python entry points: load a model or benchmark by name, score, store.

`score_many` is the one scoring path: it selects the benchmarks (by name, or every registered one
whose data is local), sets their options, loads the model once, scores each benchmark, stores each
result under one run id and applies the error policy. `score` is `score_many` on one benchmark,
and `neurobench score` only parses arguments for it and prints what it reports.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .errors import InvalidOptionError, NeurobenchError, RegistrationError
from .kinds.base import Benchmark
from .models.adapter import Adapter
from .models.positions import with_positions
from .models.readout import Readout
from .registry import benchmarks as benchmark_registry
from .registry import models as model_registry
from .result import ScoreResult
from .store import ResultStore

log = logging.getLogger(__name__)


def load_model(name: str | Adapter, weights: str | None = None, seed: int = 0) -> Adapter:
    """An Adapter by registered name. `weights`: None (the model's published weights), 'random'
    (untrained, labelled so everywhere) or a local checkpoint path. An Adapter is returned as it is
    (it cannot take `weights`)."""
    if isinstance(name, Adapter):
        if weights is not None:
            raise NeurobenchError(f"weights={weights!r} applies to a model name; {name.identifier!r} is an Adapter "
                                  "already built with its weights")
        return name
    entry = _model_entry(name)
    params = inspect.signature(entry.factory).parameters
    kwargs = {}
    if weights is not None:
        if "weights" not in params:
            raise NeurobenchError(f"model {entry.name!r} does not take --weights; its factory has no `weights` argument")
        kwargs["weights"] = weights
    if "seed" in params:
        kwargs["seed"] = seed
    adapter = entry.factory(**kwargs)
    if not isinstance(adapter, Adapter):
        raise RegistrationError(
            f"model {entry.name!r}: its factory returned {type(adapter).__name__}, expected a neurobench Adapter "
            "(e.g. nb.TorchAdapter(module, layers=[...]))"
        )
    if not getattr(adapter, "identifier", None) or adapter.identifier == "custom":
        adapter.identifier = entry.name
    return adapter


def _model_entry(name):
    """The registry entry of a model name (a typed error for anything but a name)."""
    if not isinstance(name, str):
        raise NeurobenchError(f"model: expected a registered name or a neurobench Adapter, got {type(name).__name__}")
    return model_registry.get(name)


def load_benchmark(name: str | Benchmark, **options: Any) -> Benchmark:
    """A Benchmark by registered id (a Benchmark is returned as it is), with `options` set
    (`Benchmark.configure`: unknown names and bad values raise InvalidOptionError)."""
    if isinstance(name, Benchmark):
        bench = name
    elif isinstance(name, str):
        entry = benchmark_registry.get(name)
        bench = entry.factory()
        if not isinstance(bench, Benchmark):
            raise RegistrationError(f"benchmark {entry.name!r}: its factory returned {type(bench).__name__}, "
                                    "expected a Benchmark")
        if not bench.identifier:
            bench.identifier = entry.name
    else:
        raise NeurobenchError(f"benchmark: expected a registered id or a Benchmark, got {type(name).__name__}")
    if options:
        bench.configure(**options)
    return bench


# ------------------------------------------------------------------------------------ runs

BY_NAME_ONLY = "a ground-truth check of the scorer, not brain data: name it to run it (--benchmark)"


@dataclass(frozen=True)
class Skipped:
    """A benchmark the default selection left out: `cause` is 'data' (not local; `reason` names
    the missing files) or 'by_name_only' (a ground-truth check that runs only when named)."""

    benchmark: str
    reason: str
    cause: Literal["data", "by_name_only"]


@dataclass(frozen=True)
class Failure:
    """A benchmark of the default selection that raised; the run went on without it."""

    benchmark: str
    error: NeurobenchError


@dataclass
class ScoreRun:
    """What `score_many` did: one run id for every stored result, the results in order, the
    benchmarks it skipped and why, and the failures (default selection only: a named benchmark
    that fails raises). `model` is the model's identifier as stored, `model_display` its name in
    tables ('[untrained]', controls); `store` is where the results went (None: not stored)."""

    run_id: str
    model: str
    model_display: str
    results: list[ScoreResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    store: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def headlines(self) -> pd.DataFrame:
        """One row per result: the selected layer's held-out score, CI, ceiling and normalised score."""
        return pd.DataFrame([{"benchmark": r.benchmark, "best layer": r.best_layer, "raw": r.raw, "ci_low": r.ci_low,
                              "ci_high": r.ci_high, "ceiling": r.ceiling, "normalized": r.normalized}
                             for r in self.results])


def _result_store(store: ResultStore | str | Path | bool | None) -> ResultStore | None:
    if store is None or store is False:
        return None
    if isinstance(store, ResultStore):
        return store
    return ResultStore(None if store is True else store)


def _select(names: Sequence[str | Benchmark] | None) -> tuple[list[Benchmark], list[Skipped], list[Failure]]:
    """The benchmarks to score: the named ones, or every registered one whose data is local
    (ground-truth checks only by name)."""
    if names is not None:
        if isinstance(names, (str, Benchmark)):
            names = [names]
        if not names:
            raise NeurobenchError("benchmarks: an empty list; pass None for every benchmark whose data is local")
        return [load_benchmark(name) for name in names], [], []
    chosen, skipped, failures = [], [], []
    for entry in benchmark_registry:
        if entry.meta.get("by_name_only"):
            skipped.append(Skipped(entry.name, BY_NAME_ONLY, "by_name_only"))
            continue
        try:
            bench = load_benchmark(entry.name)
            ok, why = bench.data_status()
        except NeurobenchError as exc:
            failures.append(Failure(entry.name, exc))
            continue
        if ok:
            chosen.append(bench)
        else:
            skipped.append(Skipped(entry.name, why, "data"))
    return chosen, skipped, failures


def _configure(chosen: Sequence[Benchmark], options: Mapping[str, Any] | None,
               option_text: Mapping[str, str] | None) -> None:
    """Set the options on every chosen benchmark; every benchmark that refuses one is named in a
    single InvalidOptionError, before anything is scored."""
    problems = []
    for bench in chosen:
        try:
            if options:
                bench.configure(**options)
            if option_text:
                bench.configure_from_text(dict(option_text))
        except InvalidOptionError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidOptionError("\n".join(problems))


def score_many(
    model: str | Adapter,
    benchmarks: Sequence[str | Benchmark] | None = None,
    *,
    layers: Sequence[str] | None = None,
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    memory_budget: int | None = None,
    options: Mapping[str, Any] | None = None,
    option_text: Mapping[str, str] | None = None,
    store: ResultStore | str | Path | bool | None = True,
    cache: bool = True,
    positions: str = "model",
    readout: str | Readout | None = None,
    precision: str | None = None,
    on_result: Callable[[ScoreResult], Any] | None = None,
    on_failure: Callable[[Failure], Any] | None = None,
) -> ScoreRun:
    """Score one model on several benchmarks as one run; returns a ScoreRun.

    `benchmarks`: ids (or Benchmark objects); None selects every registered benchmark whose data
    is local, skipping the others and the ground-truth checks (`ScoreRun.skipped` says why).
    `options` (Python values) and `option_text` (command-line text, parsed by each option) are set
    on every selected benchmark; one that a benchmark's kind does not declare, or a bad value,
    raises InvalidOptionError naming the benchmark and what it accepts, before anything is scored.
    `memory_budget` (bytes) bounds each score, extraction included (None: from free memory).
    `readout`: reduce every layer at extraction time, a spec string ('pool=mean',
    'pool=2,project=4096', 'pca=256,fit=first:1000') or a `Readout`; part of the cache key and
    of each result's provenance. `precision`: 'float16' / 'bfloat16' runs the forward pass in
    half precision on a GPU (also in the cache key).
    `store`: True (default) the default results store, a path or ResultStore, False/None: keep in
    memory. Every result is stored under the run's id as soon as it is computed.
    `positions='shuffled'` scores the shuffled-positions control of the model.
    Errors: a named benchmark that fails raises; in the default selection a failure is recorded
    (`ScoreRun.failures`, `on_failure`) and the run goes on. `on_result` is called with each
    result once it is stored.
    """
    if not isinstance(model, Adapter):
        _model_entry(model)  # a misspelt model fails before the selection reads any data
    chosen, skipped, failures = _select(benchmarks)
    _configure(chosen, options, option_text)
    target = _result_store(store)
    name = model if isinstance(model, str) else model.identifier
    run = ScoreRun(run_id=uuid.uuid4().hex, model=name, model_display=name, skipped=skipped,
                   store=target.path if target is not None else None)
    for failure in failures:
        _failed(run, failure, on_failure)
    if not chosen:
        return run
    adapter = with_positions(load_model(model, weights=weights, seed=seed), positions, seed)
    if readout is not None:
        adapter.with_readout(readout)
    if precision is not None:
        adapter.with_precision(precision)
    run.model, run.model_display = adapter.identifier, adapter.display_name
    for bench in chosen:
        try:
            result = bench.score(adapter, layers=layers, batch_size=batch_size, device=device, seed=seed,
                                 cache=cache, memory_budget=memory_budget)
        except NeurobenchError as exc:
            if benchmarks is not None:
                raise
            _failed(run, Failure(bench.identifier, exc), on_failure)
            continue
        if target is not None:
            target.add(result, run_id=run.run_id)
        run.results.append(result)
        log.info("scored %s on %s (run %s)", result.model_display, result.benchmark, run.run_id)
        if on_result is not None:
            on_result(result)
    return run


def _failed(run: ScoreRun, failure: Failure, on_failure) -> None:
    log.info("%s failed: %s", failure.benchmark, failure.error)
    run.failures.append(failure)
    if on_failure is not None:
        on_failure(failure)


def score(
    model: str | Adapter,
    benchmark: str | Benchmark,
    layers: Sequence[str] | None = None,
    weights: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    store: ResultStore | str | Path | bool | None = None,
    cache: bool = True,
    memory_budget: int | None = None,
    options: Mapping[str, Any] | None = None,
    positions: str = "model",
    readout: str | Readout | None = None,
    precision: str | None = None,
) -> ScoreResult:
    """Score one model on one benchmark; returns a ScoreResult (per-layer table in `.layers`).

    `store`: None/False keeps the result in memory; True uses the default store; a path or
    ResultStore stores there. A model or benchmark passed as an object is used as it is (options
    are set on it). Otherwise as `score_many`, which this calls with one benchmark.
    """
    run = score_many(model, [benchmark], layers=layers, weights=weights, device=device, batch_size=batch_size,
                     seed=seed, memory_budget=memory_budget, options=options, store=store or False, cache=cache,
                     positions=positions, readout=readout, precision=precision)
    return run.results[0]
