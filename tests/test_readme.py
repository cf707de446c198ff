"""The README's examples work exactly as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import neurobench as nb
from neurobench.registry import benchmarks, models

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str, language: str = "python") -> str:
    """The first ```language block after a README heading."""
    text = README.read_text()
    section = text[text.index(heading):]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block under {heading!r}"
    return match.group(1)


def test_plugin_example_runs_as_printed_from_the_cli_and_python(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(readme_block("## Register your own model and benchmark"))
    store = tmp_path / "s.sqlite"
    done = subprocess.run([sys.executable, "-m", "neurobench.cli", "--plugin", str(plugin), "score", "--model",
                           "tiny-convnet", "--benchmark", "toy.colour-rsa", "--store", str(store), "--quiet",
                           "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "toy.colour-rsa" in done.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        import my_plugin  # noqa: F401  (registers tiny-convnet and toy.colour-rsa, as the README says)

        result = nb.score("tiny-convnet", "toy.colour-rsa", device="cpu", store=False)
        assert result.benchmark == "toy.colour-rsa" and set(result.layers["layer"]) == {"1", "3", "5"}
        assert "n_bootstrap" in nb.load_benchmark("toy.colour-rsa").options()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_plugin", None)
        models.remove("tiny-convnet")
        benchmarks.remove("toy.colour-rsa")
