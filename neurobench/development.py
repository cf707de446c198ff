"""Development over training (the chronology): score a model's checkpoints, then when each region / metric emerges.

`checkpoint_step(path)` reads the training step from a checkpoint's file name (`step_001000.pt`,
`epoch=3-step=1200.ckpt`, `ckpt-500.pt`, `checkpoint_250.pt`, `iter_3000.pt`).
`score_checkpoints(model, weights, benchmarks)` scores every checkpoint on every benchmark in
step order, storing each result as `neurobench score --weights PATH` would; a result already in
the store for the same model, weights (sha256), benchmark, seed and options is reused, not
recomputed. It returns the trajectory: one row per (step, name, score) where the names are the
benchmarks and, for a hierarchy benchmark, its component regions (their headline encoding
scores). `chronology(...)` adds the half-steps (`metrics.hierarchy.chronology`): per name the step
at which the score first reaches half of its final value, with a 95% interval, and the order of
the names by that step; `plot_chronology` draws the trajectories and half-steps.

Kept apart from the sweep machinery on purpose: `trajectory_from_rows(rows)` builds the same
trajectory from stored rows that carry a `step` (a sweep's store), so the chronology can be read
from a sweep's results without rescoring.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidInputError
from .metrics.hierarchy import Chronology
from .metrics.hierarchy import chronology as chronology_of

log = logging.getLogger(__name__)

__all__ = ["checkpoint_step", "checkpoints", "score_checkpoints", "trajectory_from_rows", "chronology",
           "ChronologyReport", "plot_chronology"]

_STEP_PATTERNS = (
    re.compile(r"(?:^|[^a-z])(?:global_)?step[=_-]?(\d+)", re.I),
    re.compile(r"(?:^|[^a-z])(?:ckpt|checkpoint|iter|iteration)[=_-]?(\d+)", re.I),
    re.compile(r"^(\d+)\.[a-z]+$", re.I),
)


def checkpoint_step(path: str | Path) -> int:
    """The training step in a checkpoint's file name (module docstring); InvalidInputError if
    the name carries none (an epoch alone is not a step)."""
    name = Path(path).name
    for pattern in _STEP_PATTERNS:
        found = pattern.search(name)
        if found:
            return int(found.group(1))
    raise InvalidInputError(f"cannot read a training step from the file name {name!r}: name checkpoints like "
                            "step_001000.pt, epoch=3-step=1200.ckpt, ckpt-500.pt or checkpoint_250.pt")


def checkpoints(weights: str | Path | Sequence[str | Path]) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint, in step order: paths and glob patterns ('ckpts/*.pt')."""
    specs = [weights] if isinstance(weights, (str, Path)) else list(weights)
    paths: list[Path] = []
    for spec in specs:
        text = str(spec)
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not found:
            raise InvalidInputError(f"no checkpoint matches {text!r}")
        paths += [Path(p) for p in found]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InvalidInputError(f"checkpoint file(s) not found: {missing[:5]}")
    steps: dict[int, Path] = {}
    for path in paths:
        step = checkpoint_step(path)
        if step in steps and steps[step].resolve() != path.resolve():
            raise InvalidInputError(f"two checkpoints at step {step}: {steps[step]} and {path}")
        steps[step] = path
    if len(steps) < 2:
        raise InvalidInputError(f"a chronology needs >= 2 checkpoints at distinct steps, got {len(steps)}")
    return sorted(steps.items())


def _entries(benchmark: str, raw, ci_low, ci_high, provenance: Mapping[str, Any]) -> list[dict]:
    """The trajectory entries of one result: the benchmark itself, and a hierarchy benchmark's
    component regions."""
    rows = [{"name": benchmark, "kind": "benchmark", "score": raw, "ci_low": ci_low, "ci_high": ci_high}]
    for ident, comp in (provenance.get("components") or {}).items():
        rows.append({"name": ident, "kind": f"region of {benchmark}", "score": comp.get("raw"),
                     "ci_low": comp.get("ci_low"), "ci_high": comp.get("ci_high")})
    return rows


def _stored(rows: pd.DataFrame, model: str, weights_id: str, benchmark: str, seed: int, options: dict,
            layers: Sequence[str] | None) -> dict | None:
    """The latest stored headline of this model, weights, benchmark, seed and options (and layers,
    when given), or None."""
    if rows.empty:
        return None
    head = rows[(rows["row_kind"] == "headline") & (rows["model"] == model) & (rows["weights_sha256"] == weights_id)
                & (rows["benchmark"] == benchmark)]
    for rec in head.iloc[::-1].to_dict("records"):
        prov = json.loads(rec["provenance"] or "{}")
        if prov.get("seed") != seed or prov.get("options", {}) != options:
            continue
        scored = rows[(rows["result_id"] == rec["result_id"]) & (rows["row_kind"] == "layer")]["layer"]
        if layers is None or list(scored) == list(layers):
            return {**rec, "provenance": prov}
    return None


def score_checkpoints(model: str, weights, benchmarks: Sequence[str], *, store=True, seed: int = 0,
                      device: str = "auto", batch_size: int = 32, options: Mapping[str, Any] | None = None,
                      option_text: Mapping[str, str] | None = None, layers: Sequence[str] | None = None,
                      reuse: bool = True, on_result: Callable[[int, str, bool], Any] | None = None) -> pd.DataFrame:
    """Score every checkpoint (`weights`: paths or globs; step from each file name) on every
    benchmark, reusing stored results (module docstring). `on_result(step, benchmark, reused)`
    is called after each. Returns the trajectory: step, checkpoint, name, kind, score, ci_low,
    ci_high, reused."""
    from .api import _configure, _result_store, load_benchmark, load_model, score_many
    from .kinds.base import _jsonable

    if isinstance(benchmarks, str):
        benchmarks = [benchmarks]
    if not benchmarks:
        raise InvalidInputError("name at least one benchmark for the chronology")
    ckpts = checkpoints(weights)
    benches = [load_benchmark(b) for b in benchmarks]
    _configure(benches, options, option_text)
    wanted = {b.identifier: {k: _jsonable(v) for k, v in b.option_values().items()} for b in benches}
    target = _result_store(store)
    stored_rows = target.rows() if (target is not None and reuse) else pd.DataFrame()
    out = []
    for step, path in ckpts:
        adapter = load_model(model, weights=str(path), seed=seed)
        for bench in benches:
            hit = _stored(stored_rows, adapter.identifier, adapter.weights_id, bench.identifier, seed,
                          wanted[bench.identifier], layers) if reuse else None
            if hit is not None:
                entries = _entries(bench.identifier, hit["raw"], hit["ci_low"], hit["ci_high"], hit["provenance"])
                log.info("step %d, %s: reused the stored result", step, bench.identifier)
            else:
                run = score_many(adapter, [bench], layers=layers, device=device, batch_size=batch_size, seed=seed,
                                 store=target if target is not None else False)
                res = run.results[0]
                entries = _entries(bench.identifier, res.raw, res.ci_low, res.ci_high, res.provenance)
            out += [{"step": step, "checkpoint": str(path), **e, "reused": hit is not None} for e in entries]
            if on_result is not None:
                on_result(step, bench.identifier, hit is not None)
    return pd.DataFrame(out)


def trajectory_from_rows(rows: pd.DataFrame, model: str, benchmarks: Sequence[str]) -> pd.DataFrame:
    """The trajectory from stored headline rows that carry a training `step` column (a sweep's
    store): the latest result per (step, benchmark)."""
    if "step" not in rows:
        raise InvalidInputError("these stored rows carry no training step (a `step` column): score the checkpoints "
                                "with `neurobench chronology --weights ...` instead")
    head = rows[(rows["row_kind"] == "headline") & (rows["model"] == model) & rows["benchmark"].isin(benchmarks)
                & rows["step"].notna()]
    out = []
    for (step, bench), grp in head.groupby(["step", "benchmark"]):
        rec = grp.iloc[-1]
        prov = json.loads(rec["provenance"] or "{}")
        out += [{"step": int(step), "checkpoint": "", **e, "reused": True}
                for e in _entries(bench, rec["raw"], rec["ci_low"], rec["ci_high"], prov)]
    return pd.DataFrame(out)


@dataclass
class ChronologyReport:
    """A chronology: the trajectory (one row per step and name), the half-steps (`table`: name,
    kind, final score, half-step and its 95% interval, rank) and the order of the names."""

    trajectory: pd.DataFrame
    result: Chronology
    table: pd.DataFrame

    @property
    def order(self) -> list[str]:
        return self.result.order


def chronology_from_trajectory(trajectory: pd.DataFrame, *, fraction: float = 0.5, n_bootstrap: int = 1000,
                               seed: int = 0) -> ChronologyReport:
    """Half-steps of a trajectory frame (step, name, score, ci_low, ci_high)."""
    if trajectory.empty:
        raise InvalidInputError("an empty trajectory: nothing was scored")
    traj: dict[int, dict[str, float]] = {}
    cis: dict[int, dict[str, tuple]] = {}
    for rec in trajectory.to_dict("records"):
        traj.setdefault(int(rec["step"]), {})[rec["name"]] = _float(rec["score"])
        cis.setdefault(int(rec["step"]), {})[rec["name"]] = (_float(rec["ci_low"]), _float(rec["ci_high"]))
    res = chronology_of(traj, cis, fraction=fraction, n_bootstrap=n_bootstrap, seed=seed)
    kinds = dict(zip(trajectory["name"], trajectory["kind"]))
    rank = {name: i + 1 for i, name in enumerate(res.order)}
    table = pd.DataFrame({"name": res.names, "kind": [kinds.get(n, "") for n in res.names], "final": res.final,
                          "half_step": res.half, "ci_low": res.ci_low, "ci_high": res.ci_high,
                          "interval": res.interval, "rank": [rank[n] for n in res.names]})
    return ChronologyReport(trajectory, res, table.sort_values("rank", kind="stable").reset_index(drop=True))


def chronology(model: str, weights, benchmarks: Sequence[str], *, fraction: float = 0.5, n_bootstrap: int = 1000,
               seed: int = 0, **score_kwargs) -> ChronologyReport:
    """Score the checkpoints (`score_checkpoints`, results stored and reused) and compute when
    each benchmark and region reaches `fraction` of its final score (module docstring)."""
    trajectory = score_checkpoints(model, weights, benchmarks, seed=seed, **score_kwargs)
    return chronology_from_trajectory(trajectory, fraction=fraction, n_bootstrap=n_bootstrap, seed=seed)


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def plot_chronology(report: ChronologyReport, path: str | Path, title: str = "") -> list[Path]:
    """Each name's score over training steps, its half-step (dot) with its interval (bar); PNG and
    SVG next to `path` (its suffix is replaced)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    res = report.result
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), gridspec_kw={"height_ratios": [3, 2]})
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(res.names))))
    for i, name in enumerate(res.names):
        top.plot(res.steps, res.values[i], marker="o", ms=3, color=colors[i], label=name)
        if np.isfinite(res.half[i]):
            top.axvline(res.half[i], color=colors[i], lw=0.8, ls=":")
    top.set_xlabel("training step")
    top.set_ylabel("score")
    top.legend(fontsize=7, loc="lower right")
    order = report.table
    y = np.arange(len(order))
    lo = (order["half_step"] - order["ci_low"]).clip(lower=0).fillna(0)
    hi = (order["ci_high"] - order["half_step"]).clip(lower=0).fillna(0)
    bottom.errorbar(order["half_step"], y, xerr=[lo, hi], fmt="o", color="black", capsize=3)
    bottom.set_yticks(y, order["name"], fontsize=7)
    bottom.invert_yaxis()
    bottom.set_xlabel(f"step reaching {res.fraction:g} x the final score")
    bottom.set_title(f"95% interval: {res.interval}", fontsize=8)
    fig.suptitle(title or "chronology over training")
    fig.tight_layout()
    out = []
    for ext in ("png", "svg"):
        target = Path(path).with_suffix(f".{ext}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=120)
        out.append(target)
    plt.close(fig)
    return out
