import sys

import pytest

import neurobench as nb
from neurobench.errors import PluginImportError, RegistrationError, UnknownNameError
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


# ------------------------------------------------------------------------ on-demand plugins

def test_every_builtin_id_is_declared_by_the_module_that_registers_it():
    """The id patterns in pyproject.toml stay in step with what the built-in plugins register."""
    from neurobench import registry

    for reg in (registry.models, registry.benchmarks, registry.metrics):
        for entry in reg:
            module = getattr(entry.factory, "__module__", "")
            if module.startswith(("neurobench.adapters.", "neurobench.benchmarks.", "neurobench.metrics.")):
                assert module in registry._declaring(reg.group, entry.name), (reg.kind, entry.name, module)


def test_builtins_declare_ids_and_no_builtin_is_undeclared():
    from neurobench import registry

    eps = registry._plugin_entry_points()
    assert {ep.group for ep in eps} >= set(registry.DECLARATION_GROUPS.values())
    names = {ep.name for ep in eps if ep.group == "neurobench.benchmarks"}
    assert {"nsd.*", "kriegeskorte2008.*"} <= names  # '*' and '.' survive setuptools and importlib.metadata
    assert not [ep for ep in eps if ep.group == registry.ENTRY_POINT_GROUP and ep.value.startswith("neurobench.")]


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Entry points of plugin modules written for the test: `fakeplug_a` declares 'fakeplug.a-*',
    `fakeplug_broken` declares 'fakeplug.broken-*' and fails to import, `fakeplug_undeclared` is in
    the plain `neurobench.plugins` group."""
    from importlib.metadata import EntryPoint
    from unittest import mock

    from neurobench import registry

    bodies = {
        "fakeplug_a": "from neurobench.registry import register_benchmark\n"
                      "for _n in ('one', 'two'):\n"
                      "    register_benchmark(f'fakeplug.a-{_n}')(lambda: None)\n",
        "fakeplug_broken": "import no_such_dependency_for_neurobench_tests\n",
        "fakeplug_undeclared": "from neurobench.registry import register_benchmark, register_model\n"
                               "register_benchmark('fakeplug.hidden')(lambda: None)\n"
                               "register_model('fakeplug-model')(lambda: None)\n",
    }
    for name, body in bodies.items():
        (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [EntryPoint("fakeplug.a-*", "fakeplug_a", "neurobench.benchmarks"),
           EntryPoint("fakeplug.broken-*", "fakeplug_broken", "neurobench.benchmarks"),
           EntryPoint("undeclared", "fakeplug_undeclared", "neurobench.plugins")]
    monkeypatch.setattr(registry, "_entry_points", eps)
    monkeypatch.setattr(registry, "_imported", set())
    with mock.patch.dict(registry.plugin_errors, clear=True):
        yield registry
    for name in ("fakeplug.a-one", "fakeplug.a-two", "fakeplug.hidden"):
        registry.benchmarks.remove(name)
    registry.models.remove("fakeplug-model")
    for name in bodies:
        sys.modules.pop(name, None)


def test_lookup_imports_only_the_declaring_plugin(fake_plugins):
    assert "fakeplug.a-two" in benchmarks
    assert "fakeplug_a" in sys.modules
    assert "fakeplug_undeclared" not in sys.modules and "fakeplug_broken" not in sys.modules
    assert benchmarks.get("FakePlug.A-One").name == "fakeplug.a-one"  # any case


def test_an_undeclared_id_imports_every_plugin(fake_plugins):
    assert benchmarks.get("fakeplug.hidden").name == "fakeplug.hidden"
    assert {"fakeplug_a", "fakeplug_undeclared"} <= set(sys.modules)
    assert set(fake_plugins.plugin_errors) == {"fakeplug_broken"}
    assert "no_such_dependency_for_neurobench_tests" in fake_plugins.plugin_errors["fakeplug_broken"]


def test_unknown_names_are_suggested_from_every_plugin(fake_plugins):
    with pytest.raises(UnknownNameError, match="fakeplug.hidden") as info:
        benchmarks.get("fakeplug.hiden")
    assert not isinstance(info.value, PluginImportError)
    assert "fakeplug_undeclared" in sys.modules


def test_a_broken_plugin_is_named_and_does_not_break_the_others(fake_plugins):
    with pytest.raises(PluginImportError, match="fakeplug_broken.*ModuleNotFoundError") as info:
        benchmarks.get("fakeplug.broken-x")
    assert isinstance(info.value, UnknownNameError) and info.value.failed.keys() == {"fakeplug_broken"}
    assert "fakeplug.a-one" in benchmarks and "fakeplug-model" in models


def test_registering_a_declared_id_imports_its_plugin_first(fake_plugins):
    with pytest.raises(RegistrationError, match="already registered.*fakeplug_a"):
        nb.register_benchmark("fakeplug.a-one")(lambda: None)


def test_list_reports_broken_plugins(fake_plugins, capsys):
    from neurobench.cli import main

    assert main(["list", "metrics"]) == 0
    assert "plugin 'fakeplug_broken' failed to load: ModuleNotFoundError" in capsys.readouterr().err


def test_plugin_option_still_loads_a_module(fake_plugins, tmp_path, capsys):
    from neurobench.cli import main

    (tmp_path / "fakeplug_cli.py").write_text(
        "from neurobench.registry import register_metric\nregister_metric('fakeplug-metric')(lambda: None)\n")
    try:
        assert main(["--plugin", "fakeplug_cli", "list", "metrics"]) == 0
        assert "fakeplug-metric" in capsys.readouterr().out
    finally:
        nb.registry.metrics.remove("fakeplug-metric")
        sys.modules.pop("fakeplug_cli", None)
