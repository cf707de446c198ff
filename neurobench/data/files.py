"""Data manifests -> verified local files.

Resolution order for each file: the user cache (`NEUROBENCH_HOME/data/<dataset>/`), then the
local mirror directories (`NEUROBENCH_MIRROR`, used in place, read-only), then a resumable download
(`download.py`). Every file is checked before its first use against the checksum its publisher
gives (sha256, sha1 or md5); a file without one is trusted on first use (its sha256 recorded, then
enforced). A corrupt copy is never used. `NEUROBENCH_MANIFESTS` adds manifest folders that take
precedence over the built-in ones.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import tomllib

from .. import paths
from ..errors import ChecksumMismatchError, DataUnavailableError, NeurobenchError

log = logging.getLogger(__name__)


HASH_ALGORITHMS = ("sha256", "sha1", "md5")


@dataclass(frozen=True)
class FileSpec:
    """One manifest file. `digest` is the publisher's checksum in `algorithm`; None with `tofu`
    (trust on first use: no published checksum, so the sha256 of the first verified copy is
    recorded and every later use must match it)."""

    name: str
    url: str
    digest: str | None
    size: int | None = None
    algorithm: str = "sha256"
    group: str = ""
    tofu: bool = False

    @property
    def sha256(self) -> str | None:
        return self.digest if self.algorithm == "sha256" else None

    @property
    def checksum(self) -> str:
        """'algorithm:digest', or 'tofu' when no checksum is published."""
        return f"{self.algorithm}:{self.digest}" if self.digest else "tofu"


@dataclass(frozen=True)
class Manifest:
    """One dataset: its files (url, checksum, size, group), license, citation and description."""

    name: str
    title: str
    description: str
    license: str
    citation: tuple[str, ...]
    files: tuple[FileSpec, ...] = field(default_factory=tuple)
    source: str = ""

    def file(self, name: str) -> FileSpec:
        spec = self._by_name.get(name)
        if spec is not None:
            return spec
        import difflib

        close = difflib.get_close_matches(name, [f.name for f in self.files], n=3)
        hint = f"; did you mean {close}?" if close else f"; it has {len(self.files)} files, e.g. {[f.name for f in self.files[:5]]}"
        raise NeurobenchError(f"dataset {self.name!r} has no file {name!r}{hint}")

    @functools.cached_property
    def _by_name(self) -> dict[str, FileSpec]:
        return {f.name: f for f in self.files}

    def group(self, group: str) -> tuple[FileSpec, ...]:
        """The files of one group (e.g. a subject); raises naming the groups that exist."""
        found = tuple(f for f in self.files if f.group == group)
        if not found:
            groups = sorted({f.group for f in self.files if f.group})
            raise NeurobenchError(f"dataset {self.name!r} has no file group {group!r}; groups: {groups}")
        return found

    @property
    def total_size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _manifest_dir():
    return resources.files("neurobench.data_manifests")


def override_dirs() -> list[Path]:
    """NEUROBENCH_MANIFESTS: folders of <dataset>.toml that take precedence over the built-in ones
    (a re-processed or local release, or a miniature for tests)."""
    raw = os.environ.get("NEUROBENCH_MANIFESTS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def _manifest_file(name: str):
    for folder in override_dirs():
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    path = _manifest_dir() / f"{name}.toml"
    return path if path.is_file() else None


def list_manifests() -> list[str]:
    names = {p.name[:-5] for p in _manifest_dir().iterdir() if p.name.endswith(".toml")}
    for folder in override_dirs():
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.toml")}
    return sorted(names)


def _expanded(entry: dict) -> list[dict]:
    """A [[files]] entry with `expand = {key = [values]}`: one entry per combination of values,
    with `{key}` replaced in name, url and group."""
    expand = entry.get("expand")
    if not expand:
        return [entry]
    keys = list(expand)
    out = []
    for combo in itertools.product(*(expand[k] for k in keys)):
        values = {k: str(v) for k, v in zip(keys, combo)}
        out.append({k: (v.format(**values) if isinstance(v, str) else v) for k, v in entry.items() if k != "expand"})
    return out


def _file_spec(dataset: str, entry: dict) -> FileSpec:
    present = [a for a in HASH_ALGORITHMS if a in entry]
    tofu = bool(entry.get("tofu", False))
    where = f"manifest {dataset!r}, file {entry.get('name')!r}"
    if len(present) > 1 or (present and tofu) or (not present and not tofu):
        raise NeurobenchError(f"{where}: give exactly one of {', '.join(HASH_ALGORITHMS)} or `tofu = true`")
    alg = present[0] if present else "sha256"
    digest = entry[alg].lower() if present else None
    return FileSpec(entry["name"], entry["url"], digest, entry.get("size"), alg, entry.get("group", ""), tofu)


def load_manifest(name: str) -> Manifest:
    """The dataset's manifest (an override in NEUROBENCH_MANIFESTS first), parsed once per file version."""
    path = _manifest_file(name)
    if path is None:
        import difflib

        from ..errors import UnknownNameError

        known = list_manifests()
        raise UnknownNameError("dataset", name, known, difflib.get_close_matches(name, known, n=3))
    text = path.read_text()
    return _parse_manifest(name, text, str(path))


@functools.lru_cache(maxsize=64)
def _parse_manifest(name: str, text: str, source: str) -> Manifest:
    raw = tomllib.loads(text)
    files = tuple(_file_spec(name, e) for entry in raw.get("files", []) for e in _expanded(entry))
    cit = raw.get("citation", ())
    return Manifest(raw["name"], raw.get("title", ""), raw.get("description", ""), raw.get("license", ""),
                    tuple([cit] if isinstance(cit, str) else cit), files, source)


def digest_of(path: Path, algorithm: str = "sha256") -> str:
    from .download import file_digest

    return file_digest(path, algorithm)


def sha256_of(path: Path) -> str:
    return digest_of(path, "sha256")


def _marker(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return paths.subdir("data") / ".verified" / f"{key}.json"


def _tofu_record(dataset: str) -> Path:
    return paths.subdir("data") / ".tofu" / f"{dataset}.json"


def recorded_digest(dataset: str, name: str) -> str | None:
    """The sha256 recorded at the first verified use of a trust-on-first-use file, if any."""
    try:
        return json.loads(_tofu_record(dataset).read_text()).get(name, {}).get("sha256")
    except (OSError, ValueError):
        return None


def _record_tofu(dataset: str, name: str, digest: str, source: Path) -> None:
    record = _tofu_record(dataset)
    try:
        entries = json.loads(record.read_text())
    except (OSError, ValueError):
        entries = {}
    entries[name] = {"sha256": digest, "first_seen": str(source),
                     "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write_json(record, entries)
    log.warning("trust on first use: %s/%s has no published checksum; recorded sha256 %s from %s in %s",
                dataset, name, digest, source, record)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def verify(path: Path, spec: FileSpec, dataset: str = "") -> None:
    """Raise ChecksumMismatchError unless `path` matches the manifest's checksum (memoised per
    file state). A trust-on-first-use file must match the sha256 recorded at its first use."""
    st = path.stat()
    expected_alg, expected = spec.algorithm, spec.digest
    if spec.tofu:
        if not dataset:
            raise NeurobenchError(f"verifying {spec.name} (trust on first use) needs its dataset name")
        expected_alg, expected = "sha256", recorded_digest(dataset, spec.name)
    state = _file_state(path, f"{expected_alg}:{expected}")
    try:
        if expected is not None and json.loads(_marker(path).read_text()) == state:
            return
    except (OSError, ValueError):
        pass
    if spec.size is not None and st.st_size != spec.size:
        raise ChecksumMismatchError(
            f"{path}: size {st.st_size} bytes, expected {spec.size} (truncated or another release?); "
            f"{expected_alg} expected {expected}, actual {digest_of(path, expected_alg)}"
        )
    actual = digest_of(path, expected_alg)
    if expected is None:  # first use of a file without a published checksum
        _record_tofu(dataset, spec.name, actual, path)
        state["checksum"] = f"sha256:{actual}"
    elif actual != expected:
        tofu = (" (recorded at first use: no published checksum; if the publisher changed the file, delete "
                f"{_tofu_record(dataset)} to trust the new one)") if spec.tofu else ""
        raise ChecksumMismatchError(f"{path}: {expected_alg} expected {expected}{tofu}, actual {actual}")
    _write_json(_marker(path), state)


def _file_state(path: Path, checksum: str) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "checksum": checksum}


def _mark_verified(path: Path, checksum: str) -> None:
    """Remember that `path`, as it is now, has `checksum` (so its first use need not re-hash it)."""
    _write_json(_marker(path), _file_state(path, checksum))


def file_state(*paths: Path) -> tuple:
    """A cache key for parsed file contents: each file's resolved path, size and mtime, so a
    reader's memo never serves a file that changed (or another file under the same name)."""
    out = []
    for path in paths:
        st = Path(path).stat()
        out.append((str(Path(path).resolve()), st.st_size, st.st_mtime_ns))
    return tuple(out)


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
            verify(candidate, spec, dataset)
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
        f"{dataset}/{spec.name} ({spec.checksum})."
    )


def _download(dataset: str, spec: FileSpec) -> Path:
    """Resumable download into the cache, checked against the manifest (or recorded, for tofu)."""
    from .download import download

    target = cache_path(dataset, spec.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        digest = download(spec.url, target, algorithm=spec.algorithm if spec.digest else "sha256",
                          expected=spec.digest, size=spec.size, description=f"{dataset}/{spec.name}")
    except DataUnavailableError as exc:
        raise DataUnavailableError(_missing_message(dataset, spec, reason=str(exc))) from exc
    if spec.tofu:
        _record_tofu(dataset, spec.name, digest, target)
    _mark_verified(target, f"{spec.algorithm if spec.digest else 'sha256'}:{digest}")
    return target


def select_files(dataset: str, group: str | None = None, names=None) -> tuple[FileSpec, ...]:
    """A dataset's files, or one group's (e.g. a subject), or the named ones."""
    manifest = load_manifest(dataset)
    if names is not None:
        return tuple(manifest.file(n) for n in names)
    return manifest.group(group) if group else manifest.files


def fetch(dataset: str, group: str | None = None, names=None) -> list[Path]:
    """Make a dataset's files (or one group's, or the named ones) available locally, verified,
    downloading what is missing."""
    return [resolve(dataset, spec.name) for spec in select_files(dataset, group, names)]


def availability(dataset: str, names=None) -> dict[str, bool]:
    """Per file: is an intact copy already local (cache or mirror)? Nothing is downloaded."""
    out = {}
    for spec in select_files(dataset, names=names):
        ok = False
        for candidate in local_candidates(dataset, spec.name):
            try:
                verify(candidate, spec, dataset)
                ok = True
                break
            except ChecksumMismatchError:
                continue
        out[spec.name] = ok
    return out


def unpack(dataset: str, filename: str) -> Path:
    """A folder with the contents of a verified zip or tar archive, extracted once into the cache.

    Extraction goes to a temporary folder renamed into place, so an interrupted run never leaves
    a half-extracted folder that looks complete; members that would land outside it are refused.
    """
    archive = resolve(dataset, filename)
    target = cache_path(dataset, filename + ".contents")
    stamp = target / ".neurobench-unpacked"
    digest = load_manifest(dataset).file(filename).digest or recorded_digest(dataset, filename)
    if stamp.is_file() and stamp.read_text() == str(digest):
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _extract(archive, tmp)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (zipfile.BadZipFile, tarfile.TarError, OSError)):
            raise NeurobenchError(f"cannot unpack {archive} ({exc}); is it the archive the manifest describes?") from exc
        raise
    (tmp / stamp.name).write_text(str(digest))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _extract(archive: Path, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                out = (dest / member).resolve()
                if not out.is_relative_to(dest.resolve()):
                    raise NeurobenchError(f"{archive}: member {member!r} would be written outside {dest}")
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")  # refuses absolute paths, '..', links out, devices
    else:
        raise NeurobenchError(f"{archive} is neither a zip nor a tar archive")
