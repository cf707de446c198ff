"""Leaderboard views: bare model ids with a trained column, both ceiling bounds, the pivot and its
aggregate, filters, sorting, and the CLI's formats."""

import json
import math

import pytest

from neurobench.cli import main
from neurobench.errors import InvalidInputError
from neurobench.report.leaderboard import filter_board, pivot, sort_rows, with_headline_values

from .stores import make_store


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "r.sqlite")


def test_board_has_bare_model_trained_and_both_ceiling_bounds(store):
    board = store.leaderboard()
    assert not any("[untrained]" in m for m in board["model"])
    untrained = board[~board["trained"]]
    assert list(untrained["model"]) == ["alexnet"]
    hit = board[(board["benchmark"] == "toy.hit-rsa") & (board["weights_sha256"] == "1" * 64)].iloc[0]
    assert hit["ceiling_lower"] == pytest.approx(0.4) and hit["ceiling_upper"] == pytest.approx(0.6)
    mit = board[board["benchmark"] == "toy.mit-rsa"].iloc[0]
    assert math.isnan(mit["ceiling_upper"]) and (mit["ceiling_lower"] is None or math.isnan(mit["ceiling_lower"]))


def test_pivot_aggregate_is_the_mean_of_normalised_scores_with_its_count(store):
    board = with_headline_values(store.leaderboard())
    table = pivot(board)
    row = table[(table["model"] == "alexnet") & (table["weights"] == "1" * 12) & table["trained"]].iloc[0]
    hit, meg = (0.3 - 0.01) / 0.4, (0.1 - 0.01) / 0.3
    assert row["toy.hit-rsa"] == pytest.approx(hit) and row["toy.meg-rsa"] == pytest.approx(meg)
    assert math.isnan(row["toy.mit-rsa"])  # no ceiling: no normalised score, not in the aggregate
    assert row["aggregate"] == pytest.approx((hit + meg) / 2) and row["n"] == 2
    best = sort_rows(table, None).iloc[0]
    assert best["rank"] == 1 and best["aggregate"] == table["aggregate"].max()


def test_filters_and_sort(store):
    board = with_headline_values(store.leaderboard())
    assert set(filter_board(board, benchmark_prefixes=["toy.m"])["benchmark"]) == {"toy.meg-rsa", "toy.mit-rsa"}
    assert filter_board(board, families=["torchvision"])["model"].tolist() == []  # toy ids are unregistered
    assert set(filter_board(board, families=["unregistered"])["model"]) == {"alexnet", "tiny <b>net</b>"}
    ranked = sort_rows(board, "raw")
    assert list(ranked["raw"]) == sorted(board["raw"], reverse=True)
    assert list(sort_rows(board, "model")["model"]) == sorted(board["model"])
    with pytest.raises(InvalidInputError, match="no such column"):
        sort_rows(board, "nope")


def test_cli_leaderboard_json_pivot_and_markdown(store, capsys):
    assert main(["leaderboard", "--store", str(store.path), "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 7 and {"trained", "ceiling_lower", "ceiling_upper", "family"} <= set(rows[0])
    assert {r["model"] for r in rows} == {"alexnet", "tiny <b>net</b>"}
    assert main(["leaderboard", "--store", str(store.path), "--pivot", "--format", "csv",
                 "--benchmark", "toy.hit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model,trained,weights,toy.hit-rsa,aggregate,n,rank" and len(lines) == 6
    assert main(["leaderboard", "--store", str(store.path), "--pivot", "--format", "markdown",
                 "--sort", "toy.hit-rsa"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| model | trained |") and "| alexnet | true | 111111111111 | 0.7250 |" in md[2]


def test_cli_leaderboard_pivot_table_fits_80_columns(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["leaderboard", "--store", str(store.path), "--pivot"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "aggregate = mean" in out
