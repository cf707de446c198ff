"""Leaderboard views on a DataFrame of stored headline rows (`ResultStore.leaderboard()`): filters,
a models x benchmarks pivot with an aggregate column, sorting.

The aggregate (`AGGREGATE_DEFINITION`) is the mean of a model's normalised headline scores over
the benchmarks it has one on, each benchmark under its own normalisation convention (named per
benchmark), with the number of benchmarks averaged (`n`) shown beside it: models scored on
different sets of benchmarks are not comparable on it, and `n` says so. Benchmarks without a
normalised score (no ceiling) do not enter it.
"""

from __future__ import annotations

import math

import pandas as pd

from ..registry import models

AGGREGATE_DEFINITION = ("aggregate = mean of the model's normalised headline scores over the benchmarks it has one "
                        "on (each under its benchmark's normalisation convention); n = how many benchmarks were "
                        "averaged; benchmarks without a ceiling (no normalised score) are left out")
ROW_KEYS = ["model", "trained", "weights"]


def model_family(model: str) -> str:
    """The registered family of a model id ('unregistered' when no plugin declares it)."""
    try:
        return str(models.get(model).meta.get("family", "custom"))
    except Exception:  # an id no installed plugin registers (results of a plugin not loaded now)
        return "unregistered"


def with_headline_values(board: pd.DataFrame) -> pd.DataFrame:
    """The board with `family`, `weights` (short sha256) and `normalized` (the headline value under
    the row's own convention, NaN where it has none)."""
    board = board.copy()
    board["family"] = [model_family(m) for m in board["model"]]
    board["weights"] = [str(w)[:12] for w in board["weights_sha256"]]
    board["normalized"] = [float(r[r["normalization"]]) if r["normalization"] in board.columns
                           and pd.notna(r[r["normalization"]]) else math.nan
                           for _, r in board.iterrows()]
    return board


def filter_board(board: pd.DataFrame, families: list[str] | None = None,
                 benchmark_prefixes: list[str] | None = None, models_: list[str] | None = None) -> pd.DataFrame:
    """Rows of the given model families, benchmarks starting with one of the prefixes, and models."""
    keep = pd.Series(True, index=board.index)
    if families:
        keep &= board["family"].isin(families)
    if benchmark_prefixes:
        keep &= board["benchmark"].map(lambda b: any(b.startswith(p) for p in benchmark_prefixes))
    if models_:
        keep &= board["model"].isin(models_)
    return board[keep].reset_index(drop=True)


def pivot(board: pd.DataFrame, value: str = "normalized", full_weights: bool = False) -> pd.DataFrame:
    """Models x benchmarks: one row per (model, trained, weights sha256; shown as its first 12
    characters), one column per benchmark
    holding `value`, then `aggregate` and `n` (AGGREGATE_DEFINITION; the aggregate is over
    `normalized` whatever `value` shows) and `rank` (1 = highest aggregate); with `full_weights`
    also the full `weights_sha256` (the row's key)."""
    if board.empty:
        return pd.DataFrame(columns=ROW_KEYS + ["aggregate", "n", "rank"])
    keys = ["model", "trained", "weights_sha256"]
    table = board.set_index(keys + ["benchmark"])[value].unstack("benchmark")
    agg = board.groupby(keys)["normalized"].agg(["mean", "count"])
    table = table.join(agg.rename(columns={"mean": "aggregate", "count": "n"}))
    table["rank"] = table["aggregate"].rank(ascending=False, method="min").astype("Int64")
    table["n"] = table["n"].astype("Int64")
    table = table.reset_index()
    table.columns.name = None
    sha = table.pop("weights_sha256")
    table.insert(2, "weights", [str(w)[:12] for w in sha])
    if full_weights:
        table["weights_sha256"] = sha
    return table


def sort_rows(table: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Sorted by a column (numbers high first, text A-Z), NaN last; default: the aggregate or, for
    the long board, benchmark then normalised score."""
    from ..errors import InvalidInputError

    if by is None:
        by = "aggregate" if "aggregate" in table else None
    if by is None:
        return table
    if by not in table.columns:
        raise InvalidInputError(f"--sort {by!r}: no such column; columns: {', '.join(map(str, table.columns))}")
    numeric = pd.api.types.is_numeric_dtype(table[by])
    return table.sort_values(by, ascending=not numeric, na_position="last", kind="stable").reset_index(drop=True)
