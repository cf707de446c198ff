"""The `neurobench` command. Only this module prints; the library logs."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from pathlib import Path

from rich.markup import escape

from .errors import NeurobenchError, UnknownNameError
from .paths import home
from .perf import SUITES
from .progress import set_progress
from .registry import benchmarks, load_plugin, metrics, models, plugin_errors
from .terminal import FORMATS, cell_text, console, emit, interval_text, print_table
from .version import __version__

# The library (neurobench.api and what it imports: torch, pandas) is imported inside the commands,
# so `neurobench --help` and argument errors answer at once.

# The terminal's width; when piped, COLUMNS or 80 (`neurobench.terminal`): set again by `main`.
out = console()
err = console(stderr=True)


def _load_plugins(specs: list[str], report: bool) -> dict[str, str]:
    """--plugin: import each (`registry.load_plugin`); one that fails to import is reported (when
    `report`; `neurobench list` reports every broken plugin itself) and the others go on."""
    failed = {}
    for spec in specs:
        problem = load_plugin(spec)
        if problem is not None:
            failed[spec] = problem
            if report:
                err.print(f"[yellow]plugin {escape(repr(spec))} failed to load: {escape(problem)}[/yellow]")
    return failed


def cmd_list(args) -> int:
    if args.options:
        return _list_options(args)
    problems: dict[str, list[str]] = {}
    if args.what == "models":
        rows = []
        for e in models:
            family = e.meta.get("family", "custom")
            if args.family and family not in args.family:
                continue
            hub = e.meta.get("weights")
            cached = "-" if hub is None else ("yes" if hub.cached_path() is not None else "no")
            rows.append({"model": e.name, "family": family, "source": e.meta.get("source", "-"),
                         "weights cached": cached, "description": e.description})
    elif args.what == "benchmarks":
        rows = []
        for e in benchmarks:
            row = _benchmark_row(e, args.modality, problems)
            if row is not None:
                rows.append(row)
    else:
        rows = [{"metric": e.name, "description": e.description} for e in metrics]
    if rows:
        emit(out, rows, args.format, keep=("description",) if args.what == "metrics" else ())
    else:
        err.print(escape(f"no {args.what} registered" + (" that match the filters" if args.family or args.modality
                                                          else "")))
    for problem, names in problems.items():
        err.print(escape(f"data of {', '.join(names)}: {problem}"), style="yellow")
    for name, problem in plugin_errors.items():
        err.print(f"[yellow]plugin {escape(repr(name))} failed to load: {escape(problem)}[/yellow]")
    return 0


def _benchmark_row(entry, modality: list[str] | None, problems: dict[str, list[str]]) -> dict | None:
    """One row of `neurobench list benchmarks` (None: filtered out by --modality); a broken
    manifest or factory is listed, not fatal to the listing."""
    found = str(entry.meta.get("modality", "-"))  # declared with the registration: fmri, meg, spikes, topography
    if modality and found not in modality:
        return None
    try:
        rep = entry.factory().data_report()
    except NeurobenchError as exc:  # e.g. a broken manifest: reported below, the others still listed
        problems.setdefault(str(exc), []).append(entry.name)
        return {"benchmark": entry.name, "data": "error", "to download": "-", "modality": found,
                "description": entry.description}
    except Exception as exc:  # a plugin's broken factory
        return {"benchmark": entry.name, "data": f"error: {type(exc).__name__}: {exc}", "to download": "-",
                "modality": found, "description": entry.description}
    return {"benchmark": entry.name, "data": _data_state(rep), "to download": _download_text(rep), "modality": found,
            "description": entry.description}


def _option_value_text(value) -> str:
    """An option's value as `--option name=value` would write it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _list_options(args) -> int:
    """`neurobench list benchmarks --options ID`: the benchmark's options, values and documentation."""
    from .api import load_benchmark

    if args.what != "benchmarks":
        raise NeurobenchError(f"--options describes a benchmark's options: `neurobench list benchmarks --options ID`, "
                              f"not {args.what}")
    bench = load_benchmark(args.options)
    values = bench.option_values()
    rows = [{"option": name, "value": _option_value_text(values[name]), "description": doc or "-"}
            for name, doc in bench.options().items()]
    title = f"{bench.identifier} ({type(bench).__name__}): set with `neurobench score -o NAME=VALUE`"
    if rows:
        emit(out, rows, args.format, title=title)
    else:
        out.print(escape(f"{bench.identifier} ({type(bench).__name__}) takes no options"))
    return 0


def _size_text(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _data_state(rep: dict[str, int]) -> str:
    if not rep["files"] or rep["local"] == rep["files"]:
        return "local"
    return "missing" if rep["local"] == 0 else f"partial ({rep['local']}/{rep['files']} files)"


def _download_text(rep: dict[str, int]) -> str:
    parts = [_size_text(rep["missing_bytes"])] if rep["missing_bytes"] else []
    if rep["missing_unknown_size"]:
        parts.append(f"{rep['missing_unknown_size']} files of unlisted size")
    return " + ".join(parts) or "-"


def _fetch_files(dataset: str, names=None, group=None) -> None:
    from .data import files as data

    for spec in data.select_files(dataset, group, names):
        path = data.resolve(dataset, spec.name)
        how = spec.checksum.split(":")[0] + " ok" if spec.digest else "sha256 recorded on first use"
        out.print(escape(f"{dataset}/{spec.name}: {path} ({how})"))


def cmd_fetch(args) -> int:
    import difflib

    from .api import load_benchmark
    from .data import files as data

    for name in args.names:
        if name in data.list_manifests():
            _fetch_files(name, group=args.group)
            continue
        if name in benchmarks:
            for dataset, files in load_benchmark(name).required_files().items():
                _fetch_files(dataset, names=files)
            continue
        try:
            entry = models.get(name)
        except UnknownNameError:
            known = data.list_manifests() + benchmarks.names() + models.names()
            raise UnknownNameError("dataset, benchmark or model", name, known,
                                   difflib.get_close_matches(name, known)) from None
        hub = entry.meta.get("weights")
        if hub is None:
            raise NeurobenchError(f"model {name!r} has no downloadable weights to fetch")
        out.print(escape(f"{name}: {hub.fetch()}"))
    return 0


def _data_targets(names: list[str]) -> dict[str, list[str] | None]:
    """Dataset and benchmark names -> the manifest files they cover (None: all of a dataset's)."""
    import difflib

    from .data import files as data

    targets: dict[str, list[str] | None] = {}
    for name in names:
        if name in data.list_manifests():
            targets[name] = None
        elif name in benchmarks:
            from .api import load_benchmark  # torch: only when a benchmark is named

            for dataset, files in load_benchmark(name).required_files().items():
                if files is None or targets.get(dataset, []) is None:
                    targets[dataset] = None
                else:
                    targets[dataset] = list(dict.fromkeys(targets.get(dataset, []) + files))
        else:
            known = data.list_manifests() + benchmarks.names()
            raise UnknownNameError("dataset or benchmark", name, known, difflib.get_close_matches(name, known))
    return targets


def cmd_verify(args) -> int:
    from .data.audit import verify_local

    report = verify_local(_data_targets(args.names) if args.names else None)
    rows = [{"dataset": c.dataset, "file": c.file, "status": c.status, "copy": c.path or "-", "detail": c.detail}
            for c in report.checks]
    if rows:
        print_table(out, rows, title="neurobench verify: every local copy hashed again", keep=("status", "detail"))
    else:
        out.print("no local data files to verify")
    if report.not_local:
        err.print(escape(f"{report.not_local} files of these datasets have no local copy (not checked; name a "
                         "dataset or benchmark to report them as missing)"))
    if not report.ok:
        err.print(escape(f"{len(report.problems)} problem(s): corrupt copies are never used (`neurobench fetch` "
                         "downloads a good one); missing files come with `neurobench fetch`"), style="red")
    return 0 if report.ok else 1


def _parse_bytes(text: str) -> int:
    """'4GB', '512MB', '2e9' -> bytes (a positive, finite size)."""
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "b": 1}
    low = text.strip().lower()
    number, factor = low, 1.0
    for suffix, scale in units.items():
        if low.endswith(suffix):
            number, factor = low[: -len(suffix)], scale
            break
    try:
        value = float(number) * factor
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 1):
        raise NeurobenchError(f"--memory-budget {text!r}: give a positive size like 4GB or 512MB (or bytes); "
                              "leave it out to size it from free memory")
    return int(value)


def _option_pair(text: str) -> tuple[str, str]:
    """`--option NAME=VALUE` -> (NAME, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _option_text(args) -> dict[str, str]:
    """--option pairs (the last one of a name wins) plus the --reduction shorthand."""
    options = dict(args.option or [])
    if args.reduction:
        if options.get("reduction", args.reduction) != args.reduction:
            raise NeurobenchError(f"--reduction {args.reduction} and --option reduction={options['reduction']} disagree")
        options["reduction"] = args.reduction
    return options


_TIME_COLUMNS = ("peak_latency", "latency_ci_low", "latency_ci_high", "window_start", "window_end")


def _layer_view(layers):
    """The per-layer columns worth printing; times of time-resolved benchmarks in ms."""
    import pandas as pd

    cols = [c for c in ("layer", "raw", "ci_low", "ci_high", "ceiling", "ceiling_upper", "normalized",
                        "brainscore_explained_variance", "n_subjects", "alpha_at_min", "alpha_at_max", "depth",
                        "share_best", "mean_position_best") if c in layers]
    view = layers[cols].copy()
    for col in _TIME_COLUMNS:
        if col in layers:
            view[f"{col} (ms)"] = [None if pd.isna(v) else int(round(1000 * float(v))) for v in layers[col]]
    return view


def _adapter(args):
    from .api import load_model
    from .models.positions import with_positions

    return with_positions(load_model(args.model, weights=args.weights, seed=args.seed), args.positions, args.seed)


def _bounds_view(view):
    """Intervals as one '[low, high]' column each, so both bounds stay on screen: the CI
    (`ci_low`, `ci_high`) and, where the ceiling has an upper bound, the ceiling (`ceiling` is
    the lower bound scores are normalised by, `ceiling_upper` the upper)."""
    view = view.copy()
    if "ci_low" in view:
        at = list(view.columns).index("ci_low")
        ci = [interval_text(lo, hi) for lo, hi in zip(view.pop("ci_low"), view.pop("ci_high"))]
        view.insert(at, "CI", ci)
    if "ceiling_upper" in view and view["ceiling_upper"].notna().any():
        at = list(view.columns).index("ceiling")
        bounds = [interval_text(lo, hi) for lo, hi in zip(view.pop("ceiling"), view.pop("ceiling_upper"))]
        view.insert(at, "ceiling [lower, upper]", bounds)
    elif "ceiling_upper" in view:
        view = view.drop(columns=["ceiling_upper"])
    return view


def _score_json_rows(result, kind: str) -> list[dict]:
    """`neurobench score --format json`: one object per row; row_kind 'layer' (every layer, all
    stimuli) or 'headline' (the selected layer, held out), with the conventions and selection."""
    common = {"model": result.model, "trained": result.trained, "benchmark": result.benchmark, "row_kind": kind}
    if kind == "layer":
        return [{**common, **rec} for rec in result.layer_conventions().to_dict("records")]
    return [{**common, "layer": result.best_layer, "raw": result.raw, "ci_low": result.ci_low,
             "ci_high": result.ci_high, "interval": result.interval, "ceiling": result.ceiling,
             "ceiling_lower": result.ceiling_lower, "ceiling_upper": result.ceiling_upper,
             "normalized": result.normalized, "normalization": result.normalization,
             "other_normalizations": result.other_normalizations, "selection": result.selection,
             "ceiling_note": result.ceiling_note, "notes": list(result.notes),
             "duration_s": result.provenance.get("duration_s")}]


def cmd_score(args) -> int:
    from .api import score_many

    def on_result(result) -> None:
        err.print(escape(f"scored {result.benchmark} in {result.provenance.get('duration_s', 0.0):.1f}s"))
        if args.quiet:
            return
        if args.format == "json":
            emit(out, _score_json_rows(result, "layer"), "json")
            return
        print_table(out, _bounds_view(_layer_view(result.layers)),
                    title=f"{result.model_display} on {result.benchmark}: every layer on all stimuli "
                          "(the headline below is held out; see its selection note)")

    def on_failure(failure) -> None:
        err.print(f"[red]failed {escape(failure.benchmark)}: {escape(str(failure.error))}[/red]")

    run = score_many(args.model, args.benchmark, layers=args.layers, weights=args.weights, device=args.device,
                     batch_size=args.batch_size, seed=args.seed, option_text=_option_text(args),
                     memory_budget=_parse_bytes(args.memory_budget) if args.memory_budget else None,
                     store=args.store or True, cache=not args.no_cache, positions=args.positions,
                     readout=args.readout, precision=args.precision, on_result=on_result, on_failure=on_failure)
    for skip in run.skipped:
        if skip.cause != "data":
            err.print(escape(f"skipped {skip.benchmark}: {skip.reason}"))
    no_data = [skip.benchmark for skip in run.skipped if skip.cause == "data"]
    if no_data:
        err.print(escape(f"skipped {len(no_data)} benchmarks whose data is not local: {', '.join(no_data)} "
                         "(`neurobench list benchmarks` shows what each needs; `neurobench fetch <benchmark>` gets it)"))
    if run.results and args.format == "json":
        emit(out, [row for r in run.results for row in _score_json_rows(r, "headline")], "json")
        err.print(escape(f"stored in {run.store} (run {run.run_id})"))
    elif run.results:
        heads = _bounds_view(run.headlines().drop(columns=["interval", "normalization", "selection"]))
        print_table(out, heads, title=f"{run.model_display}: held-out score of the selected layer",
                    keep=("raw", "CI", "ceiling", "ceiling [lower, upper]", "normalized"))
        for r in run.results:
            out.print(escape(f"selection: {r.benchmark}: {r.selection}"))
        for r in run.results:
            out.print(escape(f"{r.benchmark}: normalised = {r.normalization}; CI = {r.interval}"
                             + "".join(f"; {k} = {v:.4f}" for k, v in r.other_normalizations.items())))
        for r in run.results:
            if r.ceiling is None and r.ceiling_note:
                out.print(escape(f"note: {r.benchmark}: {r.ceiling_note}"))
            for note in r.notes:
                out.print(escape(f"note: {r.benchmark}: {note}"))
        out.print(escape(f"stored in {run.store} (run {run.run_id})"))
        if run.already_stored:
            out.print(escape(f"not added again (the identical configuration is stored already): "
                             f"{', '.join(run.already_stored)}"))
    elif not run.failures:
        err.print("nothing was scored: no benchmark has its data available (see `neurobench list benchmarks`)")
        return 1
    return 0 if run.ok else 1


def _cluster_options(args) -> dict:
    """--workers ... --walltime as ClusterSpec options (only those given)."""
    keys = ("workers", "threads_per_worker", "scheduler", "cores", "memory", "gpus", "queue", "walltime")
    options = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.cluster:
        options["kind"] = args.cluster
    return options


def cmd_sweep(args) -> int:
    from .sweeps import read_sweep_file, sweep

    spec = read_sweep_file(args.file) if args.file else {}
    if not args.model and "models" not in spec:
        raise NeurobenchError("neurobench sweep needs --model NAME ... or a sweep file (--file sweep.toml)")
    cluster = {**spec.pop("cluster", {}), **_cluster_options(args)}
    kwargs = {
        "models": args.model or spec.pop("models"),
        "benchmarks": args.benchmark or spec.pop("benchmarks", None),
        "weights": args.weights,
        "layers": args.layers or spec.pop("layers", None),
        "option_text": {**spec.pop("option_text", {}), **_option_text(args)},
        "plugins": [*args.plugin, *spec.pop("plugins", [])],
        "store": args.store or spec.pop("store", True),
        "cluster": cluster,
        "cache": not args.no_cache,
        "retry_failed": args.retry_failed,
    }
    spec.pop("models", None)
    spec.pop("benchmarks", None)
    for key in ("device", "batch_size", "seed", "readout", "precision", "positions"):
        given = getattr(args, key)
        if given is not None:
            spec[key] = given
    budget = args.memory_budget or spec.pop("memory_budget", None)
    if budget is not None:
        spec["memory_budget"] = _parse_bytes(str(budget)) if isinstance(budget, str) else budget

    def on_event(kind, value) -> None:
        if kind == "dashboard":
            err.print(escape(value))
        elif kind == "failed":
            err.print(f"[red]failed {escape(value.model)} @ {escape(value.weights)} on {escape(value.benchmark)}: "
                      f"{escape(value.error_type)}[/red]")
        elif kind == "stored" and not args.quiet:
            unit, outcome = value
            r = outcome.result
            err.print(escape(f"scored {unit.label} on {r.benchmark}: best layer {r.best_layer}, raw {cell_text(r.raw)}"))

    run = sweep(**kwargs, **spec, on_event=on_event)
    out.print(escape(run.summary()))
    if run.failures:
        print_table(out, [{"model": f.model, "weights": f.weights, "step": f.step, "benchmark": f.benchmark,
                           "error": f.error_type, "message": f.message[:200]} for f in run.failures],
                    title="failures (stored as failure rows; --retry-failed tries them again)")
    out.print(escape(f"store: {run.store} (run {run.run_id}); `neurobench leaderboard` shows the results"))
    return 0 if run.ok else 1


def cmd_store(args) -> int:
    from .stores import merge_stores

    reports = merge_stores(args.sources, args.into)
    print_table(out, [{"source": r.source, "added": r.added, "skipped (stored already)": r.skipped,
                       "failure rows added": r.failures_added} for r in reports], title=f"merged into {args.into}")
    out.print(escape(f"{sum(r.added for r in reports)} result(s) added, {sum(r.skipped for r in reports)} skipped"))
    return 0


def cmd_chronology(args) -> int:
    from .development import chronology, plot_chronology
    from .store import check_export_path

    def on_result(step, benchmark, reused) -> None:
        if not args.quiet:
            err.print(escape(f"step {step}: {benchmark} {'(stored result reused)' if reused else 'scored'}"))

    out_csv = check_export_path(args.out) if args.out else None
    report = chronology(args.model, args.weights, args.benchmark, fraction=args.fraction, seed=args.seed,
                        store=args.store or True, device=args.device, batch_size=args.batch_size,
                        option_text=dict(args.option or []), layers=args.layers, reuse=not args.rescore,
                        on_result=on_result)
    pivot = report.trajectory.pivot_table(index="step", columns="name", values="score", sort=False).reset_index()
    print_table(out, pivot, title=f"{args.model}: score per checkpoint")
    print_table(out, report.table.drop(columns=["interval"]),
                title=f"{args.model}: step at which each score reaches {args.fraction:g} of its final value")
    out.print(escape(f"interval: {report.result.interval}; order of emergence: {' < '.join(report.order)}"))
    if out_csv is not None:
        report.table.to_csv(out_csv, index=False)
        report.trajectory.to_csv(out_csv.with_name(out_csv.stem + "-trajectory.csv"), index=False)
        out.print(escape(f"wrote {out_csv} and {out_csv.stem}-trajectory.csv"))
    if args.figure:
        written = plot_chronology(report, args.figure, title=f"{args.model}: chronology over training")
        out.print(escape(f"wrote {', '.join(str(w) for w in written)}"))
    return 0


def cmd_leaderboard(args) -> int:
    from .report.leaderboard import (
        AGGREGATE_DEFINITION,
        filter_board,
        pivot,
        sort_rows,
        with_headline_values,
    )
    from .store import check_export_path
    from .stores import open_store

    if args.export:
        check_export_path(args.export)
    store = open_store(args.store, writable=False)
    board = store.leaderboard(default_only=not args.all_configs, config=args.config)
    if args.export:
        board.to_csv(check_export_path(args.export), index=False)
        err.print(escape(f"wrote {len(board)} rows to {args.export}"))
    if board.empty:
        out.print(escape(f"no results in {store.path} yet: run `neurobench score --model ...`"))
        return 0
    board = filter_board(with_headline_values(board), args.family, args.benchmark)
    if board.empty:
        out.print(escape(f"no results in {store.path} match the filters"))
        return 0
    if args.html:
        from .report import write_leaderboard_site

        site = write_leaderboard_site(args.html, store, args.family, args.benchmark, rdms=args.rdms)
        err.print(escape(f"wrote {len(site.files)} pages ({site.nbytes / 1e6:.1f} MB, {site.n_figures} figures) in "
                         f"{site.seconds:.1f}s"))
        out.print(escape(str(site.path)))
        return 0
    if args.pivot:
        table = sort_rows(pivot(board), args.sort)
        emit(out, table, args.format, title=f"normalised headline scores ({store.path}); rank by the aggregate",
             keep=("aggregate", "n"))
        if args.format == "table":
            out.print(escape(AGGREGATE_DEFINITION))
        return 0
    columns = ["model", "trained", "weights", "family", "step", "benchmark", "best_layer", "raw", "ci_low", "ci_high",
               "interval", "ceiling_lower", "ceiling_upper", "normalized", "normalization", "metric", "config",
               "configuration", "timestamp", "run_id"]
    if args.format != "table":
        emit(out, sort_rows(board[columns], args.sort), args.format)
        return 0
    out.print(escape(f"neurobench leaderboard ({store.path}): one table per normalisation convention "
                     "(docs/conventions.md); scores under different conventions are never ranked together"))
    view = ("every configuration (--all-configs)" if args.all_configs and not args.config else
            f"configuration {args.config}" if args.config else
            "default configurations only (--all-configs shows runs on other layers, seeds or options)")
    out.print(escape(f"showing {view}"))
    for name in dict.fromkeys(board["normalization"]):
        part = sort_rows(board[board["normalization"] == name], args.sort)
        shown = ["model", "trained", "step", "benchmark", "best_layer", "raw", "ci_low", "ci_high",
                 "ceiling_lower", "ceiling_upper", "normalized", "config", "configuration"]
        if part["step"].isna().all():
            shown.remove("step")
        if not args.all_configs and not args.config:
            shown = shown[:-2]
        view = _bounds_view(part[shown].rename(
            columns={"ceiling_lower": "ceiling", "best_layer": "best layer"}))
        print_table(out, view, title=f"normalisation: {name}",
                    keep=("raw", "normalized", "configuration") if "configuration" in shown else ("raw", "normalized"))
        out.print(escape(f"  {name}: {_convention_definition(name)}"))
    return 0


def _convention_definition(name: str) -> str:
    from .conventions import convention

    try:
        return convention("normalization", name).definition
    except NeurobenchError:
        return "(not a registered convention)"


def cmd_compare(args) -> int:
    from .report.compare import compare, layer_cka

    layers = dict(args.layer or [])
    if args.cka:
        if len(args.models) != 2:
            raise NeurobenchError(f"--cka compares two models layer by layer; got {len(args.models)}")
        frame, uri = layer_cka(args.models[0], args.models[1], args.benchmark, weights=args.weights, seed=args.seed,
                               debiased=args.debiased, device=args.device, batch_size=args.batch_size)
        if args.format == "json":
            emit(out, [{"layer_a": a, "layer_b": b, "cka": float(frame.loc[a, b])}
                       for a in frame.index for b in frame.columns], "json")
        else:
            print_table(out, frame.reset_index(), title=f"linear CKA: a = {args.models[0]} (rows), "
                                                        f"b = {args.models[1]} (columns), {args.benchmark} stimuli")
        _write_figure(args.figure, uri)
        return 0
    result = compare(args.models, args.benchmark, layers=layers, weights=args.weights, store=args.store,
                     n_bootstrap=args.n_bootstrap, seed=args.seed, device=args.device, batch_size=args.batch_size)
    if args.format == "json":
        emit(out, [{"row_kind": "model", **r} for r in result.scores.to_dict("records")]
             + [{"row_kind": "pair", **r} for r in result.pairs.to_dict("records")], "json")
    else:
        print_table(out, _bounds_view(result.scores), title=f"models on {args.benchmark} (held-out half)")
        pairs = result.pairs.copy()
        pairs.insert(3, "CI", [interval_text(lo, hi) for lo, hi in zip(pairs.pop("ci_low"), pairs.pop("ci_high"))])
        print_table(out, pairs, title="paired differences (a - b)", keep=("difference", "p_holm", "p_fdr_bh"))
        out.print(escape(result.description))
    _write_figure(args.figure, result.figure)
    return 0


def _write_figure(path: str | None, uri: str) -> None:
    """--figure PATH: the figure as an SVG file."""
    if not path:
        return
    import base64

    Path(path).write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    err.print(escape(f"figure: {path}"))


def cmd_report(args) -> int:
    from .report import write_report

    written = write_report(args.out, args.store, args.model, args.benchmark, topo=args.topo, rdms=not args.no_rdms)
    for why in written.skipped:
        err.print(escape(f"not drawn: {why}"))
    err.print(escape(f"report: {written.n_figures} figures, {written.nbytes / 1e6:.2f} MB, {written.seconds:.1f}s"))
    out.print(escape(str(written.path)))
    return 0


def cmd_export(args) -> int:
    from .export import export_targets

    written = export_targets(args.model, args.benchmark, out=args.out, format=args.format, layer=args.layer,
                             plot=args.plot, store=args.store)
    for path in written:
        out.print(escape(str(path)))
    err.print(escape(f"wrote {len(written)} file(s) for {args.model} on {args.benchmark}"))
    return 0


def _topo_stimuli(spec: str | None, adapter):
    """(stimuli, label column, declared contrasts) from a benchmark or dataset name, an image
    folder or a text .tsv file; by default the language localizer for language models, else the
    92 objects."""
    from .api import load_benchmark
    from .data.stimuli import StimulusSet
    from .models.text import TextAdapter

    if spec is None:
        language = isinstance(getattr(adapter, "inner", adapter), TextAdapter)
        spec = "language-localizer" if language else "kriegeskorte2008"
    if Path(spec).is_dir():
        return StimulusSet.from_folder(spec), "category", ()
    if spec.endswith(".tsv"):
        from .benchmarks.language_localizer import read_text_tsv

        stim = read_text_tsv(spec)
        return stim, ("condition" if "condition" in stim.labels else None), ()
    names = [spec] if spec in benchmarks else [n for n in benchmarks.names() if n.startswith(spec + ".")]
    if not names:
        raise NeurobenchError(f"--stimuli {spec!r} is neither an image folder, a text .tsv file nor a benchmark "
                              "or dataset name")
    bench = load_benchmark(names[0])
    stim = bench.stimuli()
    column = getattr(bench, "label_column", None) or ("domain" if "domain" in stim.labels else None)
    return stim, column, getattr(bench, "contrasts", ())


def cmd_topo(args) -> int:
    import pandas as pd

    from .api import check_run_parameters
    from .topography.contrasts import resolve_contrasts
    from .topography.run import topo_report

    check_run_parameters(args.device, args.batch_size, args.seed)
    adapter = _adapter(args)
    stimuli, default_labels, declared = _topo_stimuli(args.stimuli, adapter)
    labels = args.labels or default_labels
    # named contrasts (declared ones or 'A+B>C' specs); else the declared ones, unless --labels asks
    # for each category against the rest
    contrasts = (resolve_contrasts(args.contrast, declared) if args.contrast
                 else None if args.labels else list(declared) or None)
    out_dir = Path(args.out or f"neurobench-topo-{adapter.identifier}{'' if adapter.trained else '-untrained'}")
    summary, results = topo_report(adapter, stimuli, out_dir, labels=labels, contrasts=contrasts,
                                   layers=args.layers, n_perm=args.n_perm, seed=args.seed, device=args.device,
                                   batch_size=args.batch_size)
    table = pd.DataFrame([r.row() for r in results])
    keep = [c for c in table.columns if c in ("layer", "near_far_similarity", "near_far_similarity_p",
                                              "near_far_similarity_shuffled",
                                              "participation_ratio", "n_constant")
            or c.endswith("_morans_i") or c.endswith("_n_clusters")]
    print_table(out, table[keep], title=f"Topographic signatures of {adapter.display_name} ({len(stimuli)} stimuli)")
    if args.lesion_benchmark:
        lesions = _topo_lesions(args, adapter, [r.layer for r in results])
        print_table(out, lesions, title=f"Silencing the {args.lesion_category} patch: {args.lesion_benchmark} score")
        from .topography.figures import markdown_table

        with open(summary, "a") as fh:
            fh.write(f"\n## Lesions: {args.lesion_benchmark}\n\n" + "\n".join(markdown_table(lesions)))
    out.print(escape(f"figures and summary: {summary}"))
    return 0


def _topo_lesions(args, adapter, layers: list[str]) -> list[dict]:
    """Brain score of each sheet layer intact, with the category patch silenced, and with as
    many random selective units silenced (unpooled activations, the benchmark's own metric)."""
    import numpy as np

    from .api import load_benchmark
    from .topography.brain_lesion import lesion_brain_score

    bench = load_benchmark(args.lesion_benchmark)
    stim = bench.stimuli()
    column = args.labels or ("domain" if "domain" in stim.labels else None)
    if column is None or column not in stim.labels:
        raise NeurobenchError(f"{args.lesion_benchmark}'s stimuli have no label column {column!r}; pass --labels")
    readout, adapter.readout = adapter.readout, None
    try:
        acts = adapter.activations(stim, layers, batch_size=args.batch_size, device=args.device)
    finally:
        adapter.readout = readout
    rows = []
    for layer in layers:
        res = lesion_brain_score(bench, np.asarray(acts[layer]), adapter.sheet_positions(layer), stim.labels[column].to_numpy(),
                                 args.lesion_category, n_random=args.lesion_random, seed=args.seed, device=args.device)
        rows.append({"layer": layer, "silenced": res.n_silenced, "intact": res.intact, "patch silenced": res.patch,
                     "random silenced (mean)": float(res.random.mean()), "p": res.p_value})
    return rows


def cmd_cache(args) -> int:
    from .memory import format_size
    from .models.cache import ActivationCache, cache_max

    cache = ActivationCache()
    if args.action == "ls":
        entries = cache.entries(args.model)
        cap = cache_max()
        total = sum(e.nbytes for e in entries)
        if entries:
            print_table(out, [e.row() for e in entries], title=f"activation cache ({cache.root})")
        out.print(escape(f"{len(entries)} entries, {format_size(total)}"
                         + (f" (of {format_size(cache.total_bytes())} in the cache)" if args.model else "")
                         + f"; cap {format_size(cap) if cap else 'none'} (NEUROBENCH_CACHE_MAX)"))
        return 0
    n, freed = cache.clear(args.model)
    out.print(escape(f"deleted {n} entries ({format_size(freed)})" + (f" of {args.model}" if args.model else "")))
    return 0


# perf tables keep these columns at any width (the others fold or are named as dropped)
_PERF_KEEP = ("median_s", "min_s", "speedup_vs_this", "peak_mb", "status", "seconds", "neurobench speed-up",
              "agreement")


def cmd_perf(args) -> int:
    try:
        module = importlib.import_module(f"neurobench.perf.{args.suite}")
    except ModuleNotFoundError as exc:
        raise NeurobenchError(f"neurobench perf {args.suite} needs {exc.name}, which is not installed") from exc
    rows = module.run(args)
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump(rows, fh, default=str)
    emit(out, rows, args.format, title=f"neurobench perf {args.suite}", keep=_PERF_KEEP)
    return 0 if args.suite != "gpu" or all(r.get("status", "ok").startswith(("ok", "skipped")) for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurobench", description="How brain-like is a model?")
    p.add_argument("--version", action="version", version=f"neurobench {__version__}")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers models/benchmarks/metrics (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score a model on benchmarks and store the results")
    s.add_argument("--model", required=True)
    s.add_argument("--benchmark", nargs="+", help="benchmark ids (default: all whose data is available)")
    s.add_argument("--layers", nargs="+", help="layers to score (default: the model's default set)")
    s.add_argument("--weights", help="'random' for an untrained network, or a checkpoint path")
    s.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, ...")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--positions", choices=["model", "shuffled"], default="model",
                   help="'shuffled': the shuffled-positions control for topo.* benchmarks")
    s.add_argument("--store", help="SQLite results file (default: $NEUROBENCH_HOME/results.sqlite)")
    s.add_argument("--memory-budget", help="memory each score may use beyond the process's fixed overhead, e.g. 4GB: "
                                            "extraction batches, activations held in memory (larger ones are read "
                                            "from disk), ridge target chunks (default: from free RAM/GPU memory)")
    s.add_argument("--readout", metavar="SPEC",
                   help="reduce every layer while extracting: pool=mean | pool=K (K x K grid) | project=N (sparse "
                        "random projection) | pca=N[,fit=first:M|label:COL=VAL] (incremental PCA), combined with "
                        "commas (pool=2,project=4096); part of the cache key and of the stored configuration")
    s.add_argument("--precision", choices=["float32", "float16", "bfloat16"], default=None,
                   help="forward-pass precision; float16/bfloat16 autocast is for GPUs (default float32)")
    s.add_argument("-o", "--option", action="append", type=_option_pair, metavar="NAME=VALUE",
                   help="set a declared option of the selected benchmarks (repeatable); one a benchmark does not "
                        "take is an error (`neurobench list benchmarks --options ID` lists them)")
    s.add_argument("--reduction", choices=["none", "srp", "pca"],
                   help="shorthand for -o reduction=...: feature reduction before ridge in encoding benchmarks")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the activation cache")
    s.add_argument("--quiet", action="store_true", help="no progress bars or per-layer tables")
    s.add_argument("--format", choices=("table", "json"), default="table",
                   help="json: JSON Lines, one object per row (row_kind 'layer' as each result arrives, unless "
                        "--quiet, then 'headline')")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("sweep", help="score models x weights x benchmarks on a Dask cluster, resumably, each "
                                     "configuration stored exactly once")
    s.add_argument("--file", metavar="SWEEP.toml", help="a sweep file (TOML or YAML; README: 'The sweep file')")
    s.add_argument("--model", nargs="+", help="registered model names")
    s.add_argument("--weights", nargs="+", help="per model: 'random', a checkpoint, or a folder / glob of checkpoints "
                                                "(one training run, scored in step order)")
    s.add_argument("--benchmark", nargs="+", help="benchmark ids (default: all whose data is available)")
    s.add_argument("--layers", nargs="+")
    s.add_argument("--device", help="device of each worker's scores (default auto)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--positions", choices=["model", "shuffled"])
    s.add_argument("--store", help="SQLite file or postgresql://user@host/db (default: $NEUROBENCH_HOME/results.sqlite)")
    s.add_argument("--memory-budget", help="memory each score may use, e.g. 4GB (per worker)")
    s.add_argument("--readout", metavar="SPEC")
    s.add_argument("--precision", choices=["float32", "float16", "bfloat16"])
    s.add_argument("-o", "--option", action="append", type=_option_pair, metavar="NAME=VALUE")
    s.add_argument("--reduction", choices=["none", "srp", "pca"])
    s.add_argument("--no-cache", action="store_true")
    s.add_argument("--retry-failed", action="store_true", help="try configurations that failed before again")
    s.add_argument("--workers", type=int, help="worker processes (LocalCluster) or jobs (SLURM/PBS/LSF); default 2")
    s.add_argument("--threads-per-worker", type=int)
    s.add_argument("--scheduler", metavar="tcp://HOST:8786", help="use an existing Dask cluster")
    s.add_argument("--cluster", choices=["local", "slurm", "pbs", "lsf"], help="where workers run (default local)")
    s.add_argument("--cores", type=int, help="cores per job (SLURM/PBS/LSF)")
    s.add_argument("--memory", help="memory per job, e.g. 32GB (SLURM/PBS/LSF)")
    s.add_argument("--gpus", type=int, help="GPUs per worker, declared as the Dask resource GPU")
    s.add_argument("--queue", help="queue / partition (SLURM/PBS/LSF)")
    s.add_argument("--walltime", help="job walltime, e.g. 04:00:00 (SLURM/PBS/LSF)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("store", help="results-store maintenance: merge per-job stores")
    ssub = s.add_subparsers(dest="action", required=True)
    m = ssub.add_parser("merge", help="merge SQLite stores into one, exactly once by configuration fingerprint")
    m.add_argument("sources", nargs="+", help="SQLite stores to read")
    m.add_argument("--into", required=True, help="the target store (SQLite path or postgresql:// URL)")
    m.set_defaults(func=cmd_store)

    s = sub.add_parser("chronology", help="score a model's training checkpoints and report when each benchmark and "
                       "region reaches half of its final score")
    s.add_argument("--model", required=True)
    s.add_argument("--weights", nargs="+", required=True, metavar="PATH_OR_GLOB",
                   help="checkpoint files or glob patterns ('ckpts/*.pt'); the step is read from each file name "
                        "(step_001000.pt, epoch=3-step=1200.ckpt, ckpt-500.pt)")
    s.add_argument("--benchmark", nargs="+", required=True, help="benchmark ids (a hierarchy benchmark adds its regions)")
    s.add_argument("--fraction", type=float, default=0.5, help="share of the final score (default 0.5: half)")
    s.add_argument("--layers", nargs="+")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--option", action="append", type=_option_pair, metavar="NAME=VALUE",
                   help="set a declared option of the benchmarks (repeatable)")
    s.add_argument("--store", help="SQLite results file (default: $NEUROBENCH_HOME/results.sqlite)")
    s.add_argument("--rescore", action="store_true", help="score every checkpoint again instead of reusing stored results")
    s.add_argument("--out", metavar="CSV", help="write the half-step table (and <stem>-trajectory.csv beside it)")
    s.add_argument("--figure", metavar="PATH", help="draw the trajectories and half-steps (PNG and SVG)")
    s.add_argument("--quiet", action="store_true", help="no progress bars or per-checkpoint lines")
    s.set_defaults(func=cmd_chronology)

    s = sub.add_parser("list", help="list registered models, benchmarks or metrics")
    s.add_argument("what", choices=["models", "benchmarks", "metrics"])
    s.add_argument("--options", metavar="BENCHMARK", help="list BENCHMARK's options, their values and documentation")
    s.add_argument("--family", nargs="+", help="only models of these families (e.g. toponets torchvision)")
    s.add_argument("--modality", nargs="+", help="only benchmarks of these modalities (fmri, meg, spikes, topography)")
    s.add_argument("--format", choices=FORMATS, default="table", help="table, or json (JSON Lines: one object per "
                   "row), csv, markdown")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("fetch", help="pre-download datasets, a benchmark's data, or model weights (checksummed; "
                                     "an interrupted download resumes)")
    s.add_argument("names", nargs="+", help="dataset, benchmark id or model name")
    s.add_argument("--group", help="only this file group of a dataset (e.g. a subject: subj01)")
    s.set_defaults(func=cmd_fetch)

    s = sub.add_parser("verify", help="hash every local data file again and report each (ok / corrupt / missing); "
                                      "exit 1 on any problem")
    s.add_argument("names", nargs="*", help="datasets or benchmark ids (default: every local file of every dataset)")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("leaderboard", help="best layer per model x benchmark from the results store")
    s.add_argument("--store")
    s.add_argument("--export", metavar="CSV", help="write the leaderboard as CSV")
    s.add_argument("--all-configs", action="store_true",
                   help="one row per configuration (layers, seed, options...), not only the default ones")
    s.add_argument("--config", metavar="FINGERPRINT", help="only the results of this configuration (a prefix will do)")
    s.add_argument("--format", choices=FORMATS, default="table",
                   help="table, or json (JSON Lines: one object per row), csv, markdown")
    s.add_argument("--pivot", action="store_true", help="models x benchmarks of normalised scores, with the aggregate "
                   "(mean over the benchmarks a model has, n shown) and rank")
    s.add_argument("--sort", metavar="COLUMN", help="sort by a column (numbers high first): e.g. raw, normalized, "
                   "model, or with --pivot a benchmark id or aggregate (default)")
    s.add_argument("--family", nargs="+", help="only models of these families (`neurobench list models`)")
    s.add_argument("--benchmark", nargs="+", metavar="PREFIX", help="only benchmarks starting with these prefixes")
    s.add_argument("--html", metavar="DIR", help="write a static site: a sortable leaderboard page (index.html) and a "
                   "report per model")
    s.add_argument("--rdms", action="store_true", help="with --html: draw model and brain RDMs in the model reports "
                   "(loads each model)")
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("compare", help="paired comparison of models on an RSA benchmark (bootstrap over stimuli "
                                       "and subjects, Holm and BH-corrected p), or layer x layer CKA of two models")
    s.add_argument("--models", nargs="+", required=True)
    s.add_argument("--benchmark", required=True)
    s.add_argument("--layer", action="append", type=_option_pair, metavar="MODEL=LAYER",
                   help="the layer of a model (default: the layer its stored headline selected)")
    s.add_argument("--weights", help="'random' for untrained networks (all models)")
    s.add_argument("--cka", action="store_true", help="layer x layer linear CKA of two models on the benchmark's stimuli")
    s.add_argument("--debiased", action="store_true", help="with --cka: the debiased CKA estimator")
    s.add_argument("--n-bootstrap", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--figure", metavar="SVG", help="write the figure (scores with CIs, or the CKA heatmap) as SVG")
    s.add_argument("--format", choices=("table", "json"), default="table",
                   help="json: JSON Lines, one object per model and per pair (row_kind)")
    s.add_argument("--store")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="one self-contained HTML report of stored results (figures inline, no network)")
    s.add_argument("--model", nargs="+", help="model ids (default: every model in the store)")
    s.add_argument("--benchmark", nargs="+", metavar="PREFIX", help="only benchmarks starting with these prefixes")
    s.add_argument("--out", default="neurobench-report.html", help="the HTML file to write")
    s.add_argument("--topo", nargs="+", metavar="DIR", help="also show the figures of `neurobench topo` folders")
    s.add_argument("--no-rdms", action="store_true", help="do not draw model and brain RDMs (they load the model)")
    s.add_argument("--store")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("export", help="per-target results (every layer) of a stored result: CSV, Parquet or NIfTI "
                       "brain maps")
    s.add_argument("--model", required=True)
    s.add_argument("--benchmark", required=True)
    s.add_argument("--layer", help="one layer (default: every layer for csv/parquet, the best layer for nifti)")
    s.add_argument("--format", choices=("csv", "parquet", "nifti"), default="csv")
    s.add_argument("--out", required=True, help="file for csv/parquet, folder for nifti")
    s.add_argument("--plot", action="store_true", help="with --format nifti: glass-brain PNG and SVG of each map")
    s.add_argument("--store")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("topo", help="topographic signatures of a model's sheet layers, with figures")
    s.add_argument("--model", required=True)
    s.add_argument("--weights", help="'random' for an untrained network, or a checkpoint path")
    s.add_argument("--stimuli", help="benchmark/dataset name, image folder or text .tsv file (id, text, labels); "
                                     "default: kriegeskorte2008, or language-localizer for a language model")
    s.add_argument("--labels", help="stimulus label column: each category against the rest (default: domain, "
                                    "sub-folder names, or the stimulus set's contrasts)")
    s.add_argument("--contrast", action="append", metavar="A>B",
                   help="a contrast between conditions: a declared name (sentences>nonwords) or 'A+B>C' over the "
                        "label column (repeatable)")
    s.add_argument("--layers", nargs="+")
    s.add_argument("--out", help="output folder (default: ./neurobench-topo-<model>)")
    s.add_argument("--n-perm", type=int, default=200, help="permutations for the null distributions")
    s.add_argument("--device", default="cpu")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--positions", choices=["model", "shuffled"], default="model",
                   help="'shuffled': the same units with positions permuted (the control)")
    s.add_argument("--lesion-benchmark", help="also report this benchmark's score with the category patch silenced")
    s.add_argument("--lesion-category", default="face", help="category whose most selective patch is silenced")
    s.add_argument("--lesion-random", type=int, default=20, help="random equal-size silencing controls")
    s.set_defaults(func=cmd_topo)

    s = sub.add_parser("cache", help="list or clear the activation cache ($NEUROBENCH_HOME/activations)")
    s.add_argument("action", choices=["ls", "clear"])
    s.add_argument("--model", help="only this model's entries")
    s.set_defaults(func=cmd_cache)

    perf = sub.add_parser("perf", help="time neurobench's cores against their reference tools")
    psub = perf.add_subparsers(dest="suite", required=True)
    for suite, (text, declare) in SUITES.items():  # declared without importing the harnesses
        sp = psub.add_parser(suite, help=text, description=text)
        declare(sp)
        sp.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
        sp.add_argument("--format", choices=FORMATS, default="table",
                        help="table, or json (JSON Lines on stdout: one object per row), csv, markdown")
        sp.set_defaults(func=cmd_perf)
    return p


def main(argv: list[str] | None = None) -> int:
    global out, err
    out, err = console(), console(stderr=True)  # the width (COLUMNS when piped) as it is now
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "quiet", False):
        set_progress(False)
    failed: dict[str, str] = {}
    try:
        home()  # NEUROBENCH_HOME must be a writable folder: said before any work starts
        failed = _load_plugins(args.plugin, report=args.command != "list")
        return args.func(args)
    except NeurobenchError as exc:
        hint = ""
        if failed and isinstance(exc, UnknownNameError):
            hint = f" (--plugin {' and '.join(failed)} failed to load: fix it if that is where it is registered)"
        err.print(f"[red]error:[/red] {escape(str(exc) + hint)}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
