"""Miniature datasets for loader tests: files written in a release's true format and layout,
published through a manifest of their own (NEUROBENCH_MANIFESTS) and a mirror (NEUROBENCH_MIRROR),
so the loaders resolve and checksum them exactly as they would the real release."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = REPO / "examples" / "my_plugin.py"  # registers tiny-convnet and toy.colour-rsa


def run_score(model: str, benchmark: str, store: Path, plugin: Path | None = None,
              timeout: int = 600) -> subprocess.CompletedProcess:
    """`neurobench score` in a fresh process, with this test's environment (home, manifests, mirror)."""
    cmd = [sys.executable, "-m", "neurobench.cli"] + (["--plugin", str(plugin)] if plugin else [])
    cmd += ["score", "--model", model, "--benchmark", benchmark, "--store", str(store), "--quiet", "--device", "cpu"]
    return subprocess.run(cmd, env=os.environ, capture_output=True, text=True, timeout=timeout)


@contextmanager
def example_plugin(name: str):
    """The example plugin's registrations (tiny-convnet, toy.colour-rsa) for the duration of a block;
    yields the module (its stimuli, RDM and model functions)."""
    from neurobench.registry import benchmarks, models

    spec = importlib.util.spec_from_file_location(name, EXAMPLE_PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        models.remove("tiny-convnet")
        benchmarks.remove("toy.colour-rsa")


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Miniature:
    """A mirror folder plus a manifest folder for one test."""

    def __init__(self, root: Path, monkeypatch):
        self.root = root / "mirror"
        self.manifests = root / "manifests"
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self._monkeypatch = monkeypatch

    def folder(self, dataset: str) -> Path:
        path = self.root / dataset
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, dataset: str, groups: dict[str, str] | None = None) -> Path:
        """Write `<manifests>/<dataset>.toml` listing every file under the dataset folder (sha256 and
        size of the miniature files; title, license, citation and URLs from the built-in manifest
        where it names the same file), and point NEUROBENCH_MANIFESTS / NEUROBENCH_MIRROR here.

        `groups` maps a file name prefix to a group (e.g. {"subj01/": "subj01"}).
        """
        builtin = REPO / "data_manifests" / f"{dataset}.toml"
        meta = tomllib.loads(builtin.read_text()) if builtin.is_file() else {}
        urls = {}
        if meta:
            from neurobench.data.files import _expanded

            urls = {e["name"]: e["url"] for entry in meta.get("files", []) for e in _expanded(entry)}
        lines = [f"name = {_toml_str(dataset)}", f"title = {_toml_str(meta.get('title', dataset) + ' (miniature)')}",
                 f"description = {_toml_str('miniature test copy')}", f"license = {_toml_str(meta.get('license', ''))}",
                 f"citation = {_toml_str('; '.join(meta.get('citation', [])) if isinstance(meta.get('citation'), list) else meta.get('citation', ''))}"]
        for path in sorted(p for p in self.folder(dataset).rglob("*") if p.is_file()):
            name = path.relative_to(self.folder(dataset)).as_posix()
            group = next((g for prefix, g in (groups or {}).items() if name.startswith(prefix)), "")
            lines += ["", "[[files]]", f"name = {_toml_str(name)}",
                      f"url = {_toml_str(urls.get(name, 'https://example.invalid/' + name))}",
                      f"sha256 = {_toml_str(hashlib.sha256(path.read_bytes()).hexdigest())}",
                      f"size = {path.stat().st_size}"]
            if group:
                lines.append(f"group = {_toml_str(group)}")
        out = self.manifests / f"{dataset}.toml"
        out.write_text("\n".join(lines) + "\n")
        self._monkeypatch.setenv("NEUROBENCH_MANIFESTS", str(self.manifests))
        mirrors = [str(self.root)] + [m for m in os.environ.get("NEUROBENCH_MIRROR", "").split(os.pathsep) if m]
        self._monkeypatch.setenv("NEUROBENCH_MIRROR", os.pathsep.join(dict.fromkeys(mirrors)))
        return out
