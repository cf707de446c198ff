"""The conventions registry: every name defined once, documented in docs/conventions.md, enforced on Scores."""

from pathlib import Path

import pandas as pd
import pytest

from neurobench.conventions import CONVENTIONS, convention, conventions
from neurobench.errors import InvalidInputError
from neurobench.result import Scores

DOCS = Path(__file__).resolve().parents[1] / "docs" / "conventions.md"


def _table_rows() -> set[tuple[str, str]]:
    rows = set()
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5:
            rows.add((cells[0], cells[1]))
    return rows


def test_every_convention_is_a_row_of_the_docs_table():
    rows = _table_rows()
    missing = [(c.kind, c.name) for c in CONVENTIONS.values() if (c.kind, c.name) not in rows]
    assert not missing, f"add these to docs/conventions.md: {missing}"


def test_lookup_names_the_known_conventions():
    assert convention("normalization", "nili_lower").source.startswith("Nili")
    with pytest.raises(InvalidInputError, match="explainable_variance_fraction"):
        convention("normalization", "r2_over_ceiling")
    assert {c.kind for c in conventions()} == {"normalization", "interval"}


def test_scores_without_a_value_or_interval_default_to_none():
    table = pd.DataFrame({"layer": ["a"], "raw": [0.3], "ci_low": [float("nan")], "ci_high": [float("nan")],
                          "ceiling": [float("nan")], "normalized": [float("nan")]})
    s = Scores(layers=table, best_layer="a", raw=0.3, ci_low=float("nan"), ci_high=float("nan"), ceiling=None,
               normalized=None, selection="one layer")
    assert (s.normalization, s.interval) == ("none", "none")
    with pytest.raises(InvalidInputError, match="interval convention"):
        Scores(layers=table, best_layer="a", raw=0.3, ci_low=0.1, ci_high=0.5, ceiling=None, normalized=None,
               selection="one layer")
    with pytest.raises(InvalidInputError, match="other_normalizations"):
        Scores(layers=table, best_layer="a", raw=0.3, ci_low=0.1, ci_high=0.5, ceiling=None, normalized=None,
               selection="one layer", interval="stimuli", other_normalizations={"brain-score": 0.4})
