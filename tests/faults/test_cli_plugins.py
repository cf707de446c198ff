"""Fault injection: a --plugin that raises on import is reported like a broken entry-point plugin,
and neurobench goes on (`list` lists the rest; `score` of a name it would have registered says so)."""

from __future__ import annotations

import pytest

from neurobench.registry import load_plugin, plugin_errors

from .boundary_support import PLUGIN, clean_registrations, cli, typed_error  # noqa: F401 (autouse)


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "broken_plugin.py"
    path.write_text("import neurobench as nb\n\n"
                    "@nb.register_model('never-registered')\n"
                    "def never():\n    pass\n\n"
                    "raise RuntimeError('the plugin is broken on purpose')\n")
    return path


def test_list_reports_a_broken_plugin_and_goes_on(capsys, broken):
    rc, out, err = cli(capsys, "--plugin", str(broken), "--plugin", str(PLUGIN), "list", "models", plugin=False)
    assert rc == 0, err
    assert "fault-net" in out and "resnet18" in out  # the other plugin and the built-ins are listed
    assert "broken_plugin.py" in err and "RuntimeError: the plugin is broken on purpose" in err
    assert "Traceback" not in err


def test_score_goes_on_with_the_other_plugins(capsys, broken, tmp_path):
    rc, _out, err = cli(capsys, "--plugin", str(broken), "--plugin", str(PLUGIN), "score", "--model", "fault-net",
                        "--benchmark", "fault.good-rsa", "--store", str(tmp_path / "s.sqlite"), "--device", "cpu",
                        "--quiet", plugin=False)
    assert rc == 0, err
    assert "failed to load: RuntimeError: the plugin is broken on purpose" in err


def test_a_name_from_the_broken_plugin_says_the_plugin_failed(capsys, broken, tmp_path):
    rc, _out, err = cli(capsys, "--plugin", str(broken), "score", "--model", "never-registered2",
                        "--store", str(tmp_path / "s.sqlite"), plugin=False)
    typed_error(rc, err, "unknown model", "broken_plugin.py failed to load")


@pytest.mark.parametrize("spec,phrase", [("no_such_plugin_module_xyz", "no module of that name"),
                                         ("missing_file.py", "no such file"), ("", "needs a module name")])
def test_a_plugin_that_does_not_exist_is_a_typed_error(capsys, spec, phrase):
    rc, _out, err = cli(capsys, "--plugin", spec, "list", "metrics", plugin=False)
    typed_error(rc, err, phrase)


def test_load_plugin_records_the_problem(broken):
    problem = load_plugin(str(broken))
    assert problem == "RuntimeError: the plugin is broken on purpose"
    assert plugin_errors[str(broken)] == problem
    syntax = broken.with_name("syntax_plugin.py")
    syntax.write_text("def oops(:\n")
    assert load_plugin(str(syntax)).startswith("SyntaxError")
