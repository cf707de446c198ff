"""Options: declared once per kind, documented once, checked by name and value."""

from __future__ import annotations

import pytest

import neurobench as nb
from neurobench.errors import InvalidOptionError
from neurobench.options import (
    declared_options,
    documented_options,
    int_at_least,
    non_negative_int,
    option,
    parse_floats,
)
from neurobench.registry import benchmarks


class Kind(nb.Benchmark):
    """A toy kind.

    Parameters
    ----------
    n_bootstrap : int
        Resamples.
    window : float or None
        Seconds.
    """

    n_bootstrap = option(1000, non_negative_int)
    window = option(0.05, float, nullable=True)


class Dataset(Kind):
    """A dataset of the toy kind.

    Parameters
    ----------
    folds : int
        Folds.
    """

    folds = option(5, int_at_least(2))
    window = None  # withdrawn: the dataset fixes its own


def test_options_are_inherited_extended_and_withdrawn():
    assert list(declared_options(Kind)) == ["n_bootstrap", "window"]
    assert list(declared_options(Dataset)) == ["folds", "n_bootstrap"]
    assert Dataset.options() == {"folds": "int: Folds.", "n_bootstrap": "int: Resamples."}


def test_configure_checks_names_and_values():
    bench = Dataset()
    bench.identifier = "toy.bench"
    assert bench.configure(n_bootstrap=10).n_bootstrap == 10 and bench.folds == 5
    with pytest.raises(InvalidOptionError, match=r"does not take option\(s\) \['window'\].*accepts: folds, n_bootstrap"):
        bench.configure(window=0.1)
    with pytest.raises(InvalidOptionError, match=r"did you mean 'n_bootstrap'"):
        bench.configure(n_bootstrp=3)
    with pytest.raises(InvalidOptionError, match=r"toy.bench: option n_bootstrap=-1: expected an integer >= 0"):
        bench.configure(n_bootstrap=-1)
    with pytest.raises(InvalidOptionError, match="folds"):
        bench.folds = 1  # attribute assignment is checked too
    assert bench.option_values() == {"folds": 5, "n_bootstrap": 10}


def test_options_from_command_line_text():
    bench = Kind()
    bench.configure_from_text({"n_bootstrap": "25", "window": "none"})
    assert bench.n_bootstrap == 25 and bench.window is None
    with pytest.raises(InvalidOptionError, match="n_bootstrap='many'"):
        bench.configure_from_text({"n_bootstrap": "many"})
    assert parse_floats("logspace(-2,2,5)") == pytest.approx((0.01, 0.1, 1.0, 10.0, 100.0))
    assert parse_floats("1, 2.5") == (1.0, 2.5)


def test_every_builtin_benchmark_documents_every_option():
    undocumented = {}
    for entry in benchmarks:
        bench = entry.factory()
        missing = [name for name, doc in bench.options().items() if not doc]
        if missing:
            undocumented[entry.name] = missing
    assert not undocumented, f"options without documentation in the kind's Parameters section: {undocumented}"


def test_documented_options_come_from_the_nearest_class():
    class Child(Kind):
        """Child.

        Parameters
        ----------
        n_bootstrap : int
            Fewer resamples here.
        """

    assert documented_options(Child)["n_bootstrap"] == "int: Fewer resamples here."
    assert documented_options(Child)["window"] == "float or None: Seconds."
