"""Toy datasets for the data-side fault tests: a manifest folder (NEUROBENCH_MANIFESTS) and a
mirror (NEUROBENCH_MIRROR) written in a test's tmp_path, and a look at what changed on disk."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path


class Toy:
    """One test's manifests, mirror and home; `publish` writes `<name>.toml` for the given files."""

    def __init__(self, root: Path, monkeypatch):
        self.root = root
        self.home = root / "home"
        self.manifests = root / "manifests"
        self.mirror = root / "mirror"
        for folder in (self.home, self.manifests, self.mirror):
            folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("NEUROBENCH_HOME", str(self.home))
        monkeypatch.setenv("NEUROBENCH_MANIFESTS", str(self.manifests))
        monkeypatch.setenv("NEUROBENCH_MIRROR", str(self.mirror))

    def put(self, dataset: str, name: str, payload: bytes) -> Path:
        """A file in the mirror, as <mirror>/<dataset>/<name>."""
        path = self.mirror / dataset / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        return path

    def publish(self, dataset: str, entries: list[dict], raw: str = "") -> Path:
        """Write a manifest: each entry a dict of [[files]] fields (strings quoted, numbers and
        booleans as they are); `raw` is appended as it is."""
        lines = [f'name = "{dataset}"', 'title = "toy"', 'license = "CC0"']
        for entry in entries:
            lines.append("[[files]]")
            for key, value in entry.items():
                lines.append(f"{key} = {_toml(value)}")
        path = self.manifests / f"{dataset}.toml"
        path.write_text("\n".join(lines) + "\n" + raw)
        return path

    def entry(self, name: str, payload: bytes, url: str = "https://data.invalid/x", **extra) -> dict:
        return {"name": name, "url": url, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), **extra}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under `root` (but not under `skip`) -> (size, mtime_ns): what a run wrote."""
    out = {}
    for dirpath, _, names in os.walk(root):
        if skip is not None and Path(dirpath).is_relative_to(skip):
            continue
        for name in names:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


PLUGIN = Path(__file__).with_name("data_plugin.py")
PLUGIN_IDS = {"models": ["faults-pixels", "faults-net"],
              "benchmarks": ["faults.npy-rsa", "faults.images-rsa", "faults.reference-rsa"]}


def forget_plugin() -> None:
    """Remove what data_plugin.py registered (the CLI runs it in this process)."""
    from neurobench.registry import benchmarks, models

    for name in PLUGIN_IDS["models"]:
        models.remove(name)
    for name in PLUGIN_IDS["benchmarks"]:
        benchmarks.remove(name)


def rewrite_in_place(path: Path, payload: bytes) -> None:
    """Overwrite a file's bytes in place (same inode) and restore its mtime: what a careless tool,
    a sync that preserves times, or a deliberate edit does."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.write(payload)
        fh.truncate()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
