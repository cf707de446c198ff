"""Data manifests -> verified local files.

Resolution order for each file: the user cache (`NEUROBENCH_HOME/data/<dataset>/`), then the
local mirror directories (`NEUROBENCH_MIRROR`, used in place, read-only), then a resumable download
(`download.py`). Every file is checked before its first use against the checksum its publisher
gives (sha256, sha1 or md5); a file without one is trusted on first use (its sha256 recorded, then
enforced). A corrupt copy is never used. `NEUROBENCH_MANIFESTS` adds manifest folders that take
precedence over the built-in ones.

Every name is checked before it touches the disk: dataset names are single folder names, manifest
file names follow `neurobench.paths.name_problem` (checked when the manifest is parsed), and the
cache, the mirrors and archive members only ever resolve inside their own folder.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import tomllib

from .. import paths
from ..errors import (
    ChecksumMismatchError,
    DataUnavailableError,
    DownloadTimeoutError,
    ManifestError,
    NeurobenchError,
    UnsafePathError,
)
from . import safefs

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

    def __post_init__(self):
        problem = paths.name_problem(self.name)
        if problem:
            raise UnsafePathError(f"data file name {self.name!r} is refused: {problem}")

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
    (a re-processed or local release, or a miniature for tests). An entry that is not a folder is
    skipped with a warning."""
    return paths.existing_dirs("NEUROBENCH_MANIFESTS")


def check_dataset_name(name) -> str:
    """A dataset name is one folder name (it names the cache folder and the manifest file)."""
    problem = paths.name_problem(name)
    if problem is None and "/" in name:
        problem = "a dataset name is a single folder name, without '/'"
    if problem:
        raise UnsafePathError(f"dataset name {name!r} is refused: {problem}")
    return name


def _manifest_file(name: str):
    for folder in override_dirs():
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    path = _manifest_dir() / f"{name}.toml"
    return path if path.is_file() else None


def list_manifests() -> list[str]:
    names = {p.name[:-5] for p in _manifest_dir().iterdir() if p.name.endswith(".toml")}
    for folder in override_dirs():
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


_FIELD_TYPES = {"name": str, "url": str, "size": int, "group": str, "tofu": bool,
                **{alg: str for alg in HASH_ALGORITHMS}}


def _file_spec(entry: dict, where: str) -> FileSpec:
    """One checked [[files]] entry; every problem is a ManifestError naming the manifest, the file
    and the rule."""
    where = f"{where}, file {entry.get('name')!r}"
    for key in ("name", "url"):
        if key not in entry:
            raise ManifestError(f"{where}: every [[files]] entry needs `{key}`")
    for key, kind in _FIELD_TYPES.items():
        if key in entry and (not isinstance(entry[key], kind) or (kind is int and isinstance(entry[key], bool))):
            what = {str: "string", int: "whole number", bool: "boolean"}[kind]
            raise ManifestError(f"{where}: `{key}` must be a {what}, got {entry[key]!r}")
    if entry.get("size") is not None and entry["size"] < 0:
        raise ManifestError(f"{where}: `size` must be a number of bytes >= 0, got {entry['size']}")
    problem = paths.name_problem(entry["name"])
    if problem:
        raise ManifestError(f"{where}: the file name is refused: {problem}")
    present = [a for a in HASH_ALGORITHMS if a in entry]
    tofu = bool(entry.get("tofu", False))
    if len(present) > 1 or (present and tofu) or (not present and not tofu):
        raise ManifestError(f"{where}: give exactly one of {', '.join(HASH_ALGORITHMS)} or `tofu = true`")
    alg = present[0] if present else "sha256"
    digest = entry[alg].strip().lower() if present else None
    if digest is not None and not safefs.is_digest(digest, alg):
        raise ManifestError(f"{where}: `{alg}` must be {safefs.HASH_LENGTHS[alg]} hex digits, got {entry[alg]!r}")
    return FileSpec(entry["name"], entry["url"], digest, entry.get("size"), alg, entry.get("group", ""), tofu)


def load_manifest(name: str) -> Manifest:
    """The dataset's manifest (an override in NEUROBENCH_MANIFESTS first), parsed once per file
    version. A manifest that cannot be used raises ManifestError naming the file and the problem."""
    check_dataset_name(name)
    path = _manifest_file(name)
    if path is None:
        import difflib

        from ..errors import UnknownNameError

        known = list_manifests()
        raise UnknownNameError("dataset", name, known, difflib.get_close_matches(name, known, n=3))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path}: cannot be read ({exc})") from exc
    return _parse_manifest(name, text, str(path))


@functools.lru_cache(maxsize=64)
def _parse_manifest(name: str, text: str, source: str) -> Manifest:
    where = f"manifest {source}"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{where} is not valid TOML ({exc}); fix or remove it") from None
    declared = raw.get("name", name)
    if declared != name:
        raise ManifestError(f"{where} says name = {declared!r}, but its file is named {name}.toml: they must agree")
    entries = raw.get("files", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ManifestError(f"{where}: `files` must be an array of tables ([[files]] entries)")
    specs = []
    for entry in entries:
        try:
            expanded = _expanded(entry)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise ManifestError(f"{where}, file {entry.get('name')!r}: `expand` must be a table of lists whose keys "
                                f"are the {{key}} fields used in name, url and group ({type(exc).__name__}: {exc})"
                                ) from None
        specs += [_file_spec(e, where) for e in expanded]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise ManifestError(f"{where}: file {spec.name!r} is listed twice")
        seen.add(spec.name)
    cit = raw.get("citation", ())
    return Manifest(name, str(raw.get("title", "")), str(raw.get("description", "")), str(raw.get("license", "")),
                    tuple([cit] if isinstance(cit, str) else cit), tuple(specs), source)

def digest_of(path: Path, algorithm: str = "sha256") -> str:
    return safefs.file_digest(path, algorithm)


def sha256_of(path: Path) -> str:
    return digest_of(path, "sha256")


def _marker(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return paths.subdir("data") / ".verified" / f"{key}.json"


def _tofu_record(dataset: str) -> Path:
    return paths.subdir("data") / ".tofu" / f"{check_dataset_name(dataset)}.json"


def recorded_digest(dataset: str, name: str) -> str | None:
    """The sha256 recorded at the first verified use of a trust-on-first-use file, if any."""
    record = safefs.read_json(_tofu_record(dataset), {})
    entry = record.get(name) if isinstance(record, dict) else None
    return entry.get("sha256") if isinstance(entry, dict) else None


def _record_tofu(dataset: str, name: str, digest: str, source: Path) -> str:
    """Record `digest` as the trusted sha256 of a file without a published checksum, unless another
    process recorded one first; return the digest on record. Read-modify-write under the record's
    lock, replaced atomically, so concurrent first uses never lose a record."""
    record = _tofu_record(dataset)
    with safefs.exclusive(record.with_name(record.name + ".lock")):
        entries = safefs.read_json(record, {})
        if not isinstance(entries, dict):
            raise ChecksumMismatchError(f"{record} is not a trust-on-first-use record (a JSON object); delete it to "
                                        "trust the current copies again")
        earlier = entries.get(name)
        if isinstance(earlier, dict) and earlier.get("sha256"):
            return earlier["sha256"]
        entries[name] = {"sha256": digest, "first_seen": str(source),
                         "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        safefs.write_json(record, entries)
    log.warning("trust on first use: %s/%s has no published checksum; recorded sha256 %s from %s in %s",
                dataset, name, digest, source, record)
    return digest


def verify(path: Path, spec: FileSpec, dataset: str = "", force: bool = False) -> str:
    """Raise ChecksumMismatchError unless `path` matches the manifest's checksum; return the
    checksum it was verified against ('algorithm:digest'). A trust-on-first-use file must match the
    sha256 recorded at its first use (its first use records it).

    The result is remembered for the file's state (`safefs.file_state`: device, inode, size, mtime,
    ctime); any change of that state, or `force`, hashes the file again."""
    expected_alg, expected = spec.algorithm, spec.digest
    if spec.tofu:
        if not dataset:
            raise NeurobenchError(f"verifying {spec.name} (trust on first use) needs its dataset name")
        expected_alg, expected = "sha256", recorded_digest(dataset, spec.name)
    checksum = f"{expected_alg}:{expected}"
    marker = _marker(path)
    if not force and expected is not None and safefs.read_json(marker) == _memo(path, checksum):
        return checksum
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        _forget(marker)
        raise ChecksumMismatchError(
            f"{path}: size {size} bytes, expected {spec.size} (truncated or another release?); "
            f"{expected_alg} expected {expected}, actual {digest_of(path, expected_alg)}"
        )
    actual = digest_of(path, expected_alg)
    if expected is None:  # first use of a file without a published checksum (or another process's)
        expected = _record_tofu(dataset, spec.name, actual, path)
        checksum = f"sha256:{expected}"
    if actual != expected:
        _forget(marker)
        tofu = (" (recorded at first use: no published checksum; if the publisher changed the file, delete "
                f"{_tofu_record(dataset)} to trust the new one)") if spec.tofu else ""
        raise ChecksumMismatchError(f"{path}: {expected_alg} expected {expected}{tofu}, actual {actual}")
    _mark_verified(path, checksum)
    return checksum


def _memo(path: Path, checksum: str) -> dict:
    return {**safefs.file_state(path), "checksum": checksum}


def _forget(marker: Path) -> None:
    marker.unlink(missing_ok=True)


def _mark_verified(path: Path, checksum: str) -> None:
    """Remember that `path`, as it is now, has `checksum` (so its next use need not re-hash it)."""
    safefs.write_json(_marker(path), _memo(path, checksum))


def file_state(*paths: Path) -> tuple:
    """A cache key for parsed file contents: each file's state (resolved path, device, inode, size,
    mtime, ctime), so a reader's memo never serves a file that changed (or another file under the
    same name)."""
    return tuple(tuple(safefs.file_state(path).values()) for path in paths)
def cache_path(dataset: str, filename: str) -> Path:
    """Where the cache keeps a dataset's file: NEUROBENCH_HOME/data/<dataset>/<file> (names checked;
    an empty file name gives the dataset's folder)."""
    folder = paths.home() / "data" / check_dataset_name(dataset)
    return paths.inside(folder, filename, f"dataset {dataset!r}: file", resolve=False) if filename else folder


def local_candidates(dataset: str, filename: str) -> list[Path]:
    """Where a file may already be: the cache, then each mirror (as <mirror>/<dataset>/<file> or <mirror>/<file>)."""
    found = [cache_path(dataset, filename)]
    for mirror in paths.mirror_dirs():
        found += [paths.inside(mirror / dataset, filename, "mirror file", resolve=False),
                  paths.inside(mirror, filename, "mirror file", resolve=False)]
    return [p for p in found if _is_file(p)]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as exc:  # e.g. a mirror folder this user may not read
        log.warning("cannot look at %s (%s); skipping it", path, exc)
        return False


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
        except OSError as exc:  # e.g. a mirror file this user may not read
            log.warning("not using %s: cannot read it (%s)", candidate, exc)
            bad.append(f"{candidate}: cannot read it ({exc.strerror or exc})")
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
            f"no intact, readable copy of {dataset}/{filename}: " + "; ".join(bad)
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
    algorithm = spec.algorithm if spec.digest else "sha256"
    expected = spec.digest or recorded_digest(dataset, spec.name)  # a tofu file must match its record
    try:
        digest = download(spec.url, target, algorithm=algorithm, expected=expected, size=spec.size,
                          description=f"{dataset}/{spec.name}")
    except DownloadTimeoutError:
        raise
    except DataUnavailableError as exc:
        raise DataUnavailableError(_missing_message(dataset, spec, reason=str(exc))) from exc
    if spec.tofu and _record_tofu(dataset, spec.name, digest, target) != digest:
        return _download_conflict(dataset, spec, target)
    _mark_verified(target, f"{algorithm}:{digest}")
    return target


def _download_conflict(dataset: str, spec: FileSpec, target: Path):
    """Another process recorded another first copy while this one downloaded: verify against it."""
    verify(target, spec, dataset, force=True)
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
            except (ChecksumMismatchError, OSError):
                continue
        out[spec.name] = ok
    return out


UNPACKED_STAMP = ".neurobench-unpacked"


def unpack(dataset: str, filename: str) -> Path:
    """A folder with the contents of a verified zip or tar archive, extracted once into the cache.

    One process unpacks an archive at a time (a lock per archive); another waits, then reuses the
    result. Extraction goes to a temporary folder renamed into place, within the size and ratio
    limits of `archives.extract`, so an interrupted run never leaves a half-extracted folder that
    looks complete. A folder from another version of the archive is renamed away before the new
    one takes its name, never deleted in place. The stamp records the archive's checksum and each
    extracted file's size and sha256 (`neurobench verify` checks them).
    """
    from .archives import extract

    archive = resolve(dataset, filename)
    spec = load_manifest(dataset).file(filename)
    checksum = spec.checksum if spec.digest else f"sha256:{recorded_digest(dataset, filename)}"
    target = cache_path(dataset, filename + ".contents")
    lock = target.with_name(target.name + ".lock")
    with safefs.exclusive(lock, waiting=f"another process is unpacking {archive.name}; waiting for it"):
        if unpacked_checksum(target) == checksum:
            return target
        _clear_leftovers(target)
        log.info("unpacking %s into %s", archive, target)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.mkdir(parents=True)
        try:
            extract(archive, tmp)
            safefs.write_json(tmp / UNPACKED_STAMP, {"archive": checksum, "files": _inventory(tmp)})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if target.exists():
            old = target.with_name(f"{target.name}.{os.getpid()}.old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    return target


def unpacked_checksum(folder: Path) -> str | None:
    """The checksum of the archive `folder` was completely unpacked from, or None."""
    stamp = safefs.read_json(folder / UNPACKED_STAMP)
    return stamp.get("archive") if isinstance(stamp, dict) else None


def _clear_leftovers(target: Path) -> None:
    """Temporary and renamed-away folders of runs that were killed (called under the archive's lock,
    so no live process is writing them)."""
    for pattern in (f"{target.name}.*.tmp", f"{target.name}.*.old"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _inventory(folder: Path) -> dict[str, list]:
    """Each file under `folder` (relative '/'-path) -> [size, sha256]."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(folder).as_posix()] = [path.stat().st_size, digest_of(path)]
    return out
