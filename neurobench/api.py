"""The Python entry points: load a model or benchmark by name, score, store.

`score_many` is the one scoring path: it selects the benchmarks (by name, or every registered one
whose data is local), sets their options, loads the model once, scores each benchmark, stores each
result under one run id and applies the error policy. `score` is `score_many` on one benchmark,
and `neurobench score` only parses arguments for it and prints what it reports.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from . import paths
from .devices import resolve_device
from .errors import (
    InvalidInputError,
    InvalidOptionError,
    NeurobenchError,
    RegistrationError,
    StoreError,
)
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
        bench.default_options = bench.option_values()
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
    already_stored: list[str] = field(default_factory=list)  # benchmarks whose identical configuration was stored
    skipped: list[Skipped] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    store: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def headlines(self) -> pd.DataFrame:
        """One row per result: the selected layer's held-out score, CI (and what it resamples),
        ceiling (`ceiling`: the lower bound the score is normalised by; `ceiling_upper` where the
        ceiling has an upper bound), normalised score and its convention (docs/conventions.md),
        and how the layer was selected."""
        return pd.DataFrame([{"benchmark": r.benchmark, "best layer": r.best_layer, "raw": r.raw, "ci_low": r.ci_low,
                              "ci_high": r.ci_high, "interval": r.interval, "ceiling": r.ceiling,
                              "ceiling_upper": r.ceiling_upper, "normalized": r.normalized,
                              "normalization": r.normalization, "selection": r.selection}
                             for r in self.results])


MAX_SEED = 2**32 - 1  # every library a seed reaches (numpy, torch, scikit-learn) accepts 0..2**32-1


@dataclass(frozen=True)
class RunParameters:
    """The checked parameters of a run (`check_run_parameters`)."""

    device: torch.device
    batch_size: int
    seed: int
    memory_budget: int | None


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def check_run_parameters(device="auto", batch_size: int = 32, seed: int = 0,
                         memory_budget: int | float | None = None) -> RunParameters:
    """Check a run's device, batch size, seed and memory budget before any work, with an
    InvalidInputError that says what is accepted: a device this machine has (`resolve_device`),
    a batch size >= 1, a seed in 0..2**32-1, a memory budget of a positive, finite number of
    bytes (None: from free memory)."""
    dev = resolve_device(device)
    batch = _whole(batch_size, "batch size")
    if batch < 1:
        raise InvalidInputError(f"batch size must be at least 1, got {batch} (e.g. --batch-size 32)")
    seed = _whole(seed, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"seed must be between 0 and {MAX_SEED} (2**32 - 1), the range numpy, torch and "
                                f"scikit-learn all accept; got {seed}")
    budget = None
    if memory_budget is not None:
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, numbers.Real) or not (
                math.isfinite(memory_budget) and memory_budget >= 1):
            raise InvalidInputError(f"memory budget must be a positive, finite number of bytes (e.g. 4GB), got "
                                    f"{memory_budget!r}; leave it out to size it from free memory")
        budget = int(memory_budget)
    return RunParameters(dev, batch, seed, budget)


def _result_store(store: ResultStore | str | Path | bool | None) -> ResultStore | None:
    if store is None or store is False:
        return None
    if isinstance(store, ResultStore):
        return store
    from .stores import open_store

    return open_store(None if store is True else store)


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
        if entry.meta.get("by_name_only"):  # True, or a string saying why
            why = entry.meta["by_name_only"]
            skipped.append(Skipped(entry.name, why if isinstance(why, str) else BY_NAME_ONLY, "by_name_only"))
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
    result once it is stored. Before anything is computed, the run's parameters are checked
    (`check_run_parameters`), then the options, then the store is opened and proved writable
    (`StoreError`): all before the model is loaded.
    """
    run_params = check_run_parameters(device, batch_size, seed, memory_budget)
    if not isinstance(model, Adapter):
        _model_entry(model)  # a misspelt model fails before the selection reads any data
    chosen, skipped, failures = _select(benchmarks)
    _configure(chosen, options, option_text)
    target = _result_store(store)  # an unusable store fails before the model is loaded, not after the work
    name = model if isinstance(model, str) else model.identifier
    run = ScoreRun(run_id=uuid.uuid4().hex, model=name, model_display=name, skipped=skipped,
                   store=target.path if target is not None else None)
    for failure in failures:
        _failed(run, failure, on_failure)
    if not chosen:
        return run
    device, batch_size, seed, memory_budget = (run_params.device, run_params.batch_size, run_params.seed,
                                               run_params.memory_budget)
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
        if target is not None and not _store(target, result, run.run_id):
            run.already_stored.append(result.benchmark)
        run.results.append(result)
        log.info("scored %s on %s (run %s)", result.model_display, result.benchmark, run.run_id)
        if on_result is not None:
            on_result(result)
    return run


def _store(target: ResultStore, result: ScoreResult, run_id: str) -> bool:
    """Store a result (False: its configuration was stored already, nothing added); if the store
    fails after all (the disk filled up, it was made read-only during the run), keep the scores in
    a CSV under NEUROBENCH_HOME and say where."""
    try:
        return target.insert(result, run_id)
    except StoreError as exc:
        kept = ""
        try:
            folder = paths.subdir("unstored")
            path = folder / f"{run_id}-{result.benchmark}.csv"
            result.to_frame().assign(run_id=run_id, headline_raw=result.raw, headline_ci_low=result.ci_low,
                                     headline_ci_high=result.ci_high, headline_normalized=result.normalized,
                                     best_layer=result.best_layer).to_csv(path, index=False)
            kept = f"; its scores were kept in {path}"
        except OSError:
            pass
        raise StoreError(f"{exc}{kept}") from None


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
