"""`neurobench report` and `neurobench leaderboard --html`: pages built from a results store.

A report is one self-contained HTML file (module `html`): for each model, its headline table and,
per benchmark, the layer profile (raw score per layer with its CI band, the ceiling band between
its lower and upper bounds, the held-out headline marked) with the selection explained; the MEG
score time course with the peak latency and its CI (time-resolved benchmarks:
`provenance["timecourse"]`); model and brain RDMs side by side (RSA benchmarks, when the model
can be loaded here); per-voxel maps on a glass brain (benchmarks with voxel coordinates);
training trajectories (several checkpoints of one model); topographic maps and smoothness curves
from `neurobench topo` output folders; and the provenance of every number. A section that
cannot be drawn says why.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..conventions import convention
from ..errors import InvalidInputError, NeurobenchError
from ..store import ResultStore
from . import figures
from .html import (
    SORT_JS,
    definition_list,
    esc,
    figure,
    interval_cell,
    number_cell,
    page,
    table,
    text_cell,
)
from .leaderboard import AGGREGATE_DEFINITION, filter_board, pivot, sort_rows, with_headline_values
from .results import StoredResult, stored_results

log = logging.getLogger(__name__)


@dataclass
class Written:
    """What a report or site writer wrote: the main file, every file, figure count, seconds, and
    the sections skipped with their reasons."""

    path: Path
    files: list[Path] = field(default_factory=list)
    n_figures: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def slug(text: str) -> str:
    """A file-name-safe form of a model id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.") or "model"


def _store(store) -> ResultStore:
    return store if isinstance(store, ResultStore) else ResultStore(store, writable=False)


def _convention_text(kind: str, name: str | None) -> str:
    if not name:
        return "-"
    try:
        return f"{name}: {convention(kind, name).definition}"
    except NeurobenchError:
        return str(name)


def _headline_rows(results: list[StoredResult]) -> list[list[str]]:
    rows = []
    for r in results:
        h = r.headline
        lower, upper = r.ceiling_bounds
        rows.append([text_cell(r.benchmark), text_cell(h["layer"]), number_cell(h["raw"]),
                     interval_cell(h["ci_low"], h["ci_high"]), interval_cell(lower, upper),
                     number_cell(h["normalized"]), text_cell(h.get("normalization") or "-"),
                     text_cell(h.get("interval") or "-")])
    return rows


def _provenance(r: StoredResult) -> str:
    h, p = r.headline, r.provenance
    items = [("model", r.model_display), ("weights sha256", r.weights_sha256), ("benchmark", r.benchmark),
             ("metric", h.get("metric") or "-"), ("normalisation", _convention_text("normalization", h.get("normalization"))),
             ("interval (what the CI resamples)", _convention_text("interval", h.get("interval"))),
             ("layer selection", h.get("selection") or "-"), ("ceiling", h.get("ceiling_note") or "-"),
             ("seed", h.get("seed")), ("device", h.get("device")), ("neurobench", h.get("neurobench_version")),
             ("duration (s)", f"{float(h['duration_s']):.1f}" if h.get("duration_s") is not None else "-"),
             ("timestamp", h.get("timestamp")), ("run id", h.get("run_id")), ("result id", r.result_id)]
    for key in ("comparator", "rdm_method", "transform", "readout", "preprocess", "precision", "n_bootstrap",
                "bootstrap", "stimulus_set_hash", "options", "data_hashes"):
        if key in p:
            value = p[key]
            items.append((key, json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)))
    return f"<details><summary>provenance of these numbers</summary>{definition_list(items)}</details>"


def _rdm_section(r: StoredResult, adapters: dict) -> tuple[str | None, str | None]:
    """(figure HTML, None) or (None, why not): the selected layer's model RDM beside the mean
    brain RDM, both recomputed here (the store keeps scores, not RDMs)."""
    p = r.provenance
    if "rdm_method" not in p or "timecourse" in p:
        return None, None  # not a (static) RSA benchmark: nothing to say
    try:
        import torch

        from ..api import load_benchmark, load_model
        from ..metrics.rdm import compute_rdms

        bench = load_benchmark(r.benchmark)
        data, _ = bench.data_rdms(torch.device("cpu"))
        key = (r.model, r.trained, int(p.get("seed", 0)))
        if key not in adapters:  # one load per model for the whole report
            adapters[key] = load_model(r.model, weights=None if r.trained else "random", seed=key[2])
        adapter = adapters[key]
        if adapter.weights_id != r.weights_sha256:
            return None, (f"model RDM not drawn: {r.model} loads here with weights {adapter.weights_id}, the stored "
                          f"result was scored with {r.weights_sha256}")
        stim = bench.stimuli()
        acts = adapter.activations(stim, [r.headline["layer"]])
        model_rdm = compute_rdms(torch.as_tensor(np.asarray(acts[r.headline["layer"]])), p["rdm_method"],
                                 device="cpu", dtype=torch.float64).cpu().numpy()
    except (NeurobenchError, OSError, KeyError, ValueError) as exc:
        return None, f"model and brain RDMs not drawn: {exc}"
    brain = _square(data.cpu().numpy().astype(float).mean(axis=0), model_rdm.shape[-1])
    uri = figures.matrix_pair(model_rdm, brain, (f"{r.model_display} {r.headline['layer']} ({p['rdm_method']})",
                                                 f"brain (mean of {data.shape[0]} data RDM(s))"),
                              "dissimilarity percentile")
    return figure(uri, "Model RDM of the selected layer (all stimuli) beside the brain RDM, each as percentiles of "
                  "its own dissimilarities; before any transform the benchmark applies "
                  f"({p.get('transform') or 'none'}).", "model and brain RDMs"), None


def _square(condensed: np.ndarray, n: int) -> np.ndarray:
    if condensed.ndim == 2:
        return condensed
    m = np.zeros((n, n))
    iu = np.triu_indices(n, 1)
    m[iu] = condensed
    return m + m.T


def _voxel_section(r: StoredResult, store: ResultStore, folder: Path) -> tuple[list[str], str | None]:
    from ..export import target_volumes

    try:
        stored = store.targets(r.model, r.benchmark)
    except NeurobenchError as exc:
        return [], f"per-voxel maps not drawn: {exc}"
    if not stored.space:
        return [], "per-voxel maps not drawn: the benchmark's targets have no voxel coordinates"
    try:
        import nibabel as nib

        from ..export import glass_brain
    except ImportError as exc:
        return [], f"per-voxel maps not drawn: {exc.name} is not installed"
    import base64

    out = []
    for (subject, value), (vol, affine) in target_volumes(stored, r.headline["layer"]).items():
        if value != "r":  # one map per subject: the held-out r of the selected layer
            continue
        img = nib.Nifti1Image(np.nan_to_num(vol, nan=0.0), affine)
        tmp = folder / f"{slug(r.model)}_{slug(r.benchmark)}_{slug(subject)}.nii.gz"
        for path in glass_brain(img, tmp, f"{subject}: {value}"):
            if path.suffix == ".png":
                uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
                out.append(figure(uri, f"{subject}: per-voxel {value} of layer {r.headline['layer']}",
                                  "glass brain"))
            path.unlink()
    return out, None


def _benchmark_section(r: StoredResult, store: ResultStore, written: Written, rdms: bool, scratch: Path,
                       adapters: dict) -> str:
    h = r.headline
    parts = [f"<h3>{esc(r.benchmark)}</h3>"]
    parts.append(figure(figures.layer_profile(r),
                        "Raw score of every layer on all stimuli with its CI band; grey: the ceiling band (lower to "
                        f"upper bound); red diamond: the headline, layer {h['layer']} scored on held-out stimuli.",
                        f"layer profile of {r.model_display} on {r.benchmark}"))
    written.n_figures += 1
    parts.append(f'<p class="note"><b>Selection.</b> {esc(h.get("selection") or "-")}</p>')
    if h.get("ceiling_note"):
        parts.append(f'<p class="note"><b>Ceiling.</b> {esc(h["ceiling_note"])}</p>')
    parts += [f'<p class="note"><b>Note.</b> {esc(n)}</p>' for n in r.notes]
    course = r.provenance.get("timecourse")
    if isinstance(course, dict) and "times" in course and "r" in course:
        parts.append(figure(figures.timecourse(course, h["layer"], f"{r.model_display} on {r.benchmark}"),
                            "Score over time per layer (grey) and for the selected layer (red), with its peak latency "
                            "and the latency's bootstrap CI where recorded. "
                            + str(course.get("statistic", "")), "score time course"))
        written.n_figures += 1
    if rdms:
        fig, why = _rdm_section(r, adapters)
        if fig:
            parts.append(fig)
            written.n_figures += 1
        elif why:
            parts.append(f'<p class="skip">{esc(why)}</p>')
            written.skipped.append(f"{r.model_display} {r.benchmark}: {why}")
    maps, why = _voxel_section(r, store, scratch)
    if maps:
        parts += maps
        written.n_figures += len(maps)
    elif why and "no per-target" not in why:
        parts.append(f'<p class="skip">{esc(why)}</p>')
    parts.append(_provenance(r))
    return "\n".join(parts)


def _trajectories(results: list[StoredResult], written: Written) -> list[str]:
    """Score vs checkpoint for every (model, benchmark) the store holds several weights of."""
    groups: dict[tuple[str, str], list[StoredResult]] = {}
    for r in results:
        if r.trained:
            groups.setdefault((r.model, r.benchmark), []).append(r)
    parts = []
    for (model, bench), rs in groups.items():
        if len(rs) < 2:
            continue
        steps = [r.step for r in rs]
        if all(s is not None for s in steps):
            order = np.argsort(steps)
            xs, xlabel = [steps[i] for i in order], "checkpoint step"
        else:
            order = np.arange(len(rs))
            xs, xlabel = list(range(len(rs))), "checkpoint (in the order scored; no step recorded)"
        rs = [rs[i] for i in order]
        uri = figures.trajectory(xs, [r.headline["raw"] for r in rs], [r.headline["ci_low"] for r in rs],
                                 [r.headline["ci_high"] for r in rs], xlabel, f"{model} on {bench}")
        parts.append(figure(uri, f"Held-out headline of {model} on {bench} across {len(rs)} checkpoints "
                            f"(weights {', '.join(r.weights_sha256[:8] for r in rs)}).", "training trajectory"))
        written.n_figures += 1
    return parts


def _topography(dirs, written: Written) -> list[str]:
    import base64

    parts = []
    for d in dirs or ():
        folder = Path(d)
        if not folder.is_dir():
            raise InvalidInputError(f"--topo {folder}: not a folder (give the output folder of `neurobench topo`)")
        svgs = sorted(folder.rglob("*.svg"))  # `neurobench topo` writes them under figures/
        if not svgs:
            written.skipped.append(f"topography: {folder} holds no figures")
            continue
        parts.append(f"<h3>Topography: {esc(folder.name)}</h3>")
        for svg in svgs:
            uri = "data:image/svg+xml;base64," + base64.b64encode(svg.read_bytes()).decode()
            parts.append(figure(uri, svg.stem.replace("_", " "), svg.stem))
            written.n_figures += 1
    return parts


HEADLINE_COLUMNS = ["benchmark", "layer", "raw", "CI", "ceiling [lower, upper]", "normalized", "normalization",
                    "interval"]


def write_report(out, store=None, models: list[str] | None = None, benchmarks: list[str] | None = None,
                 topo: list[str] | None = None, rdms: bool = True, title: str | None = None) -> Written:
    """Write one self-contained HTML report of the stored results of `models` (default: every
    model in the store) on `benchmarks` (names or prefixes; default: all) to the file `out`."""
    start = time.perf_counter()
    st = _store(store)
    out = Path(out)
    if out.is_dir():
        raise InvalidInputError(f"report path {out} is a folder; give a file name, e.g. {out / 'report.html'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = stored_results(st, models, benchmarks)
    written = Written(out)
    scratch = out.parent / f".{out.name}.tmp"
    scratch.mkdir(exist_ok=True)
    by_model: dict[str, list[StoredResult]] = {}
    adapters: dict = {}  # models loaded for RDMs, reused across benchmarks
    for r in results:
        by_model.setdefault(f"{r.model_display} ({r.weights_sha256[:12]})", []).append(r)
    heading = title or ("neurobench report: " + ", ".join(dict.fromkeys(r.model_display for r in results)))
    body = [f"<h1>{esc(heading)}</h1>",
            f'<p class="note">From {esc(st.path)}: {len(results)} result(s). Raw scores with their CIs; ceilings as '
            "[lower, upper] bounds; normalised = raw under the named convention. Per-layer profiles use all stimuli; "
            "each headline is the layer chosen on one half of the stimuli, scored on the other.</p>"]
    try:
        for name, rs in by_model.items():
            body.append(f'<h2 id="{esc(slug(name))}">{esc(name)}</h2>')
            body.append(table(HEADLINE_COLUMNS, _headline_rows(rs), sortable=True))
            body += [_benchmark_section(r, st, written, rdms, scratch, adapters) for r in rs]
        traj = _trajectories(results, written)
        if traj:
            body += ["<h2>Training trajectories</h2>", *traj]
        topo_parts = _topography(topo, written)
        if topo_parts:
            body += ["<h2>Topographic signatures</h2>", *topo_parts]
        if written.skipped:
            body.append("<h2>Not drawn</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in written.skipped) + "</ul>")
    finally:
        for leftover in scratch.iterdir():
            leftover.unlink()
        scratch.rmdir()
    out.write_text(page(heading, "\n".join(body), SORT_JS), encoding="utf-8")
    written.files = [out]
    written.seconds = time.perf_counter() - start
    log.info("wrote %s (%d figures, %.1f s)", out, written.n_figures, written.seconds)
    return written


def write_leaderboard_site(folder, store=None, families: list[str] | None = None,
                           benchmark_prefixes: list[str] | None = None, reports: bool = True,
                           rdms: bool = False) -> Written:
    """A static site in `folder`: index.html (a sortable models x benchmarks table of normalised
    scores with their raw CIs, the aggregate column, links to each model's report) and
    models/<model>.html, one report per model."""
    start = time.perf_counter()
    st = _store(store)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"--html {folder} is a file; give a folder for the site")
    board = filter_board(with_headline_values(st.leaderboard()), families, benchmark_prefixes)
    if board.empty:
        raise InvalidInputError(f"no results in {st.path} match the filters: nothing to put on a leaderboard")
    (folder / "models").mkdir(parents=True, exist_ok=True)
    written = Written(folder / "index.html")
    links = {}
    if reports:
        for model in dict.fromkeys(board["model"]):
            rep = write_report(folder / "models" / f"{slug(model)}.html", st, [model], benchmark_prefixes, rdms=rdms)
            links[model] = f"models/{slug(model)}.html"
            written.files += rep.files
            written.n_figures += rep.n_figures
    table_ = sort_rows(pivot(board, full_weights=True), None)
    benches = sorted(set(board["benchmark"]))
    cells = {(r["model"], r["trained"], r["weights_sha256"], r["benchmark"]): r for _, r in board.iterrows()}
    rows = []
    for _, row in table_.iterrows():
        model = row["model"]
        name = (f'<a href="{esc(links[model])}">{esc(model)}</a>' if model in links else esc(model))
        cols = [f"<td>{name}</td>", text_cell("yes" if row["trained"] else "no"),
                f'<td title="{esc(row["weights_sha256"])}">{esc(row["weights"])}</td>',
                number_cell(row["rank"], 0), number_cell(row["aggregate"]), number_cell(row["n"], 0)]
        for b in benches:
            c = cells.get((model, row["trained"], row["weights_sha256"], b))
            if c is None:
                cols.append('<td class="num" data-value="">-</td>')
                continue
            value = c["normalized"] if np.isfinite(c["normalized"]) else None
            shown = esc(f"{value:.3f}" if value is not None else "-")
            ci = esc(f"raw {c['raw']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]")
            cols.append(f'<td class="num" data-value="{"" if value is None else value}" '
                        f'title="{esc(c["normalization"])}; CI: {esc(c["interval"])}">{shown}<br><small>{ci}</small></td>')
        rows.append(cols)
    columns = ["model", "trained", "weights", "rank", "aggregate", "n"] + benches
    conventions = "".join(f"<li>{esc(b)}: {esc(_convention_text('normalization', n))}</li>"
                          for b, n in sorted(set(zip(board["benchmark"], board["normalization"]))))
    body = ("<h1>neurobench leaderboard</h1>"
            f'<p class="note">{esc(len(table_))} model(s) x {esc(len(benches))} benchmark(s) from {esc(st.path)}. '
            "Each cell: the normalised headline score (the selected layer, held out) and below it the raw score "
            "with its CI. Click a header to sort.</p>"
            f'<p class="note"><b>Aggregate.</b> {esc(AGGREGATE_DEFINITION)}.</p>'
            + table(columns, rows, sortable=True, table_id="leaderboard")
            + f"<h2>Conventions</h2><ul class=\"note\">{conventions}</ul>")
    written.path.write_text(page("neurobench leaderboard", body, SORT_JS), encoding="utf-8")
    written.files.insert(0, written.path)
    written.seconds = time.perf_counter() - start
    return written
