"""Data manifests -> verified local files.

Resolution order for each file: the user cache (`NEUROBENCH_HOME/data/<dataset>/`), then the
local mirror directories (`NEUROBENCH_MIRROR`, used in place, read-only), then a download through
pooch. Every file's sha256 is checked before its first use; a corrupt copy is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import tomllib

from . import paths
from .errors import ChecksumMismatchError, DataUnavailableError, NeurobenchError
from .progress import progress_enabled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSpec:
    name: str
    url: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Manifest:
    """One dataset: its files (url, sha256, size), license, citation and description."""

    name: str
    title: str
    description: str
    license: str
    citation: tuple[str, ...]
    files: tuple[FileSpec, ...] = field(default_factory=tuple)

    def file(self, name: str) -> FileSpec:
        for spec in self.files:
            if spec.name == name:
                return spec
        raise NeurobenchError(f"dataset {self.name!r} has no file {name!r}; it has {[f.name for f in self.files]}")

    @property
    def total_size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _manifest_dir():
    return resources.files("neurobench.data_manifests")


def list_manifests() -> list[str]:
    return sorted(p.name[:-5] for p in _manifest_dir().iterdir() if p.name.endswith(".toml"))


def load_manifest(name: str) -> Manifest:
    path = _manifest_dir() / f"{name}.toml"
    if not path.is_file():
        import difflib

        from .errors import UnknownNameError

        known = list_manifests()
        raise UnknownNameError("dataset", name, known, difflib.get_close_matches(name, known, n=3))
    raw = tomllib.loads(path.read_text())
    files = tuple(FileSpec(f["name"], f["url"], f["sha256"].lower(), f.get("size")) for f in raw.get("files", []))
    cit = raw.get("citation", ())
    return Manifest(raw["name"], raw.get("title", ""), raw.get("description", ""), raw.get("license", ""),
                    tuple([cit] if isinstance(cit, str) else cit), files)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _marker(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return paths.subdir("data") / ".verified" / f"{key}.json"


def verify(path: Path, spec: FileSpec) -> None:
    """Raise ChecksumMismatchError unless `path` has the manifest's sha256 (memoised per file state)."""
    st = path.stat()
    state = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}
    marker = _marker(path)
    try:
        if json.loads(marker.read_text()) == state:
            return
    except (OSError, ValueError):
        pass
    if spec.size is not None and st.st_size != spec.size:
        actual = sha256_of(path)
        raise ChecksumMismatchError(
            f"{path}: size {st.st_size} bytes, expected {spec.size} (truncated or another release?); "
            f"sha256 expected {spec.sha256}, actual {actual}"
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ChecksumMismatchError(f"{path}: sha256 expected {spec.sha256}, actual {actual}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, marker)


def cache_path(dataset: str, filename: str) -> Path:
    return paths.home() / "data" / dataset / filename


def local_candidates(dataset: str, filename: str) -> list[Path]:
    """Where a file may already be: the cache, then each mirror (as <mirror>/<dataset>/<file> or <mirror>/<file>)."""
    found = [cache_path(dataset, filename)]
    for mirror in paths.mirror_dirs():
        found += [mirror / dataset / filename, mirror / filename]
    return [p for p in found if p.is_file()]


def offline() -> bool:
    return os.environ.get("NEUROBENCH_OFFLINE", "").lower() in ("1", "true", "yes")


def resolve(dataset: str, filename: str, download: bool = True) -> Path:
    """A verified local path for one manifest file, downloading it if needed and allowed."""
    spec = load_manifest(dataset).file(filename)
    bad: list[str] = []
    for candidate in local_candidates(dataset, filename):
        try:
            verify(candidate, spec)
            return candidate
        except ChecksumMismatchError as exc:
            log.warning("not using corrupt copy: %s", exc)
            bad.append(str(exc))
    if download and not offline():
        try:
            return _download(dataset, spec)
        except ChecksumMismatchError as exc:
            bad.append(str(exc))
        except DataUnavailableError as exc:
            if not bad:
                raise
            log.warning("%s", exc)
    if bad:
        raise ChecksumMismatchError(
            f"no intact copy of {dataset}/{filename}: " + "; ".join(bad)
            + f". Delete the corrupt copy and run `neurobench fetch {dataset}`, or put the right file in a mirror."
        )
    raise DataUnavailableError(_missing_message(dataset, spec, reason="offline" if offline() or not download else None))


def _missing_message(dataset: str, spec: FileSpec, reason: str | None) -> str:
    mirrors = ", ".join(map(str, paths.mirror_dirs())) or "none set"
    why = "downloads are disabled (NEUROBENCH_OFFLINE or download=False)" if reason == "offline" else f"could not download it ({reason})"
    return (
        f"data file {dataset}/{spec.name} is not available: not in the cache ({cache_path(dataset, spec.name)}), "
        f"not in any mirror (NEUROBENCH_MIRROR: {mirrors}), and {why}. Provide it by one of: "
        f"`neurobench fetch {dataset}` with network access; downloading {spec.url} yourself into "
        f"{cache_path(dataset, spec.name).parent}; or setting NEUROBENCH_MIRROR to a folder holding "
        f"{dataset}/{spec.name} (sha256 {spec.sha256})."
    )


def _download(dataset: str, spec: FileSpec) -> Path:
    import pooch

    target = cache_path(dataset, spec.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(
            spec.url, known_hash=f"sha256:{spec.sha256}", fname=spec.name, path=target.parent,
            progressbar=progress_enabled(),
        )
    except ValueError as exc:  # pooch's hash mismatch; it deletes the download itself
        raise ChecksumMismatchError(f"downloaded {spec.url}: {exc}") from exc
    except Exception as exc:  # network errors come in many types (requests, urllib3, OSError)
        raise DataUnavailableError(_missing_message(dataset, spec, reason=f"{type(exc).__name__}: {exc}")) from exc
    verify(Path(path), spec)
    return Path(path)


def fetch(dataset: str) -> list[Path]:
    """Make every file of a dataset available locally (verified), downloading what is missing."""
    return [resolve(dataset, spec.name) for spec in load_manifest(dataset).files]


def availability(dataset: str) -> dict[str, bool]:
    """Per file: is an intact copy already local (cache or mirror)? Nothing is downloaded."""
    out = {}
    for spec in load_manifest(dataset).files:
        ok = False
        for candidate in local_candidates(dataset, spec.name):
            try:
                verify(candidate, spec)
                ok = True
                break
            except ChecksumMismatchError:
                continue
        out[spec.name] = ok
    return out
