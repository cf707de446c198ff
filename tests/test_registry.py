import pytest

import neurobench as nb
from neurobench.errors import RegistrationError, UnknownNameError
from neurobench.registry import Registry, benchmarks, models


def test_builtins_come_through_entry_points():
    assert "toporesnet18" in models
    assert "toporesnet18-tau50" in models
    assert "kriegeskorte2008.hit-rsa" in benchmarks
    assert models.get("toporesnet18").meta["family"] == "toponets"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        models.get("toporesnet81")
    assert "toporesnet18" in str(info.value)
    assert "neurobench list models" in str(info.value)


def test_unknown_benchmark_through_api():
    with pytest.raises(UnknownNameError, match="kriegeskorte2008.hit-rsa"):
        nb.load_benchmark("kriegeskorte2008.hit-rs")


def test_duplicate_registration_is_refused():
    reg = Registry("model")

    def first():
        return 1

    def second():
        return 2

    reg.add("a", first)
    reg.add("a", first)  # the same definition again (a module imported twice) is fine
    with pytest.raises(RegistrationError, match="already registered"):
        reg.add("a", second)
    reg.add("a", second, replace=True)
    assert reg.get("a").factory is second


def test_bad_names_and_factories():
    reg = Registry("model")
    with pytest.raises(RegistrationError):
        reg.add(" padded ", lambda: 1)
    with pytest.raises(RegistrationError, match="callable"):
        reg.add("x", 42)


def test_description_defaults_to_docstring_first_line():
    reg = Registry("metric")

    def f():
        """First line.

        More."""

    assert reg.add("f", f).description == "First line."


def test_factory_must_return_adapter():
    @nb.register_model("returns-a-string")
    def bad():
        return "not an adapter"

    try:
        with pytest.raises(RegistrationError, match="expected a neurobench Adapter"):
            nb.load_model("returns-a-string")
    finally:
        models.remove("returns-a-string")
