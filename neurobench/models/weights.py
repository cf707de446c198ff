"""Model weights: downloads (Hugging Face hub or URL, sha256-checked), local files, random init.

Checkpoints are always read with `torch.load(weights_only=True)`: no pickle code from outside runs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import paths
from ..data.files import offline, sha256_of
from ..data.safefs import file_state, is_digest, read_json, write_json
from ..errors import CheckpointError, InvalidInputError

log = logging.getLogger(__name__)


SHA256_SOURCES = ("hub", "file-name")


def hub_lfs_sha256(repo_id: str, filename: str, revision: str = "main") -> str:
    """The sha256 the hub lists for a file (network call); files without one are refused."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    expected = next((s.lfs.sha256 for s in info.siblings if s.rfilename == filename and s.lfs), None)
    if expected is None:
        raise CheckpointError(f"{repo_id}: the hub lists no sha256 for {filename}; refusing to use it unverified")
    return expected


def check_download(path: Path, expected: str, label: str) -> str:
    """Delete `path` and raise unless its sha256 is `expected` (or starts with it, for a prefix);
    return the sha256."""
    actual = sha256_of(path)
    if not actual.startswith(expected):
        path.unlink(missing_ok=True)
        raise CheckpointError(f"{label}: {_mismatch(expected, path)}, got {actual}; deleted, run `neurobench fetch` again")
    return actual


def _mismatch(expected: str, path: Path) -> str:
    if len(expected) == 64:
        return f"sha256 expected {expected}"
    return f"sha256 does not start with {expected} as its file name promises (the file is corrupt or not {path.name})"


@dataclass(frozen=True)
class WeightSource:
    """Downloadable weights: where their local copy is cached, how it is fetched, which sha256 it must have.

    Where: one file (`filename`) of a Hugging Face model repository (`repo_id`, `revision`), cached
    in NEUROBENCH_HOME/hub; with `folder_files` (which must be cached with it) and `extra_files`
    (fetched when the repository has them), the local copy is the snapshot folder instead of the
    file.  Or a plain `url`, cached as NEUROBENCH_HOME/<cache>/<filename>.

    Which sha256 (`sha256`): "hub", the sha256 the hub lists for the file's LFS object (a network
    call; files without one are refused), or "file-name", the hash prefix in the file name
    (torchvision's `<name>-<sha256 prefix>.pth` convention; known offline).  A download that does
    not match is deleted.

    Every load checks the cached copy against the sha256 recorded when it was downloaded and
    verified (NEUROBENCH_HOME/hub-verified/<key>.json, with the file's state: device, inode, size,
    mtime, ctime); the file is hashed again whenever that state changed, and on every load with
    `recheck` (for files that need a pickle load).  A copy cached before any record (by this or
    another tool) is checked against what is known offline (the file-name prefix, or the sha256
    that names a hub LFS blob), else against the hub.  A cached copy that does not match is
    deleted and refused with a CheckpointError naming the file and what to do.

    Offline (NEUROBENCH_OFFLINE) or unreachable, `fetch` raises CheckpointError naming the
    alternatives: `--weights PATH` to `local` (default: a local copy of the file) or `--weights
    random` (`random_note` adds what that still needs).  `what` names the weights in messages
    (default: "weights <repo>/<file>").
    """

    filename: str
    repo_id: str | None = None
    revision: str = "main"
    url: str | None = None
    cache: str = "hub"
    folder_files: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = ()
    sha256: str = "hub"
    recheck: bool = False
    what: str = ""
    local: str = ""
    random_note: str = ""

    def __post_init__(self):
        if (self.repo_id is None) == (self.url is None):
            raise InvalidInputError(f"weights {self.filename}: give exactly one of repo_id (a hub repository) "
                                    "and url")
        if self.sha256 not in SHA256_SOURCES or (self.url is not None and self.sha256 == "hub"):
            raise InvalidInputError(f"weights {self.filename}: sha256 must be one of {SHA256_SOURCES} "
                                    f"('hub' for hub files only), got {self.sha256!r}")
        for name in (self.filename, *self.folder_files, *self.extra_files):
            problem = paths.name_problem(name)
            if problem:
                raise InvalidInputError(f"weights file name {name!r} is refused: {problem}")

    @property
    def cache_dir(self) -> Path:
        return paths.subdir(self.cache)

    @property
    def is_folder(self) -> bool:
        return bool(self.folder_files or self.extra_files)

    @property
    def label(self) -> str:
        return f"{self.repo_id}/{self.filename}" if self.repo_id else self.filename

    def weights_file(self, local: Path) -> Path:
        """The weights file of a local copy (the copy itself, or the file in the snapshot folder)."""
        return paths.inside(local, self.filename, "weights file", resolve=False) if self.is_folder else local

    def cached_path(self) -> Path | None:
        """The local copy (file or snapshot folder) if it is cached, else None; nothing is checked."""
        if self.url is not None:
            target = paths.inside(self.cache_dir, self.filename, "weights file")
            return target if target.is_file() else None
        from huggingface_hub import try_to_load_from_cache

        hits = [try_to_load_from_cache(self.repo_id, f, cache_dir=self.cache_dir, revision=self.revision)
                for f in (*self.folder_files, self.filename)]
        if not all(isinstance(h, str) for h in hits):
            return None
        return Path(hits[-1]).parent if self.is_folder else Path(hits[-1])

    def fetch(self) -> Path:
        """The local copy, downloaded and verified if needed."""
        return self.fetch_verified()[0]

    def fetch_verified(self) -> tuple[Path, str]:
        """(local copy, sha256 of its weights file as verified)."""
        path = self.cached_path()
        if path is not None:
            return path, self._check_cached(self.weights_file(path))
        expected = self._name_prefix() if self.sha256 == "file-name" else None  # known offline
        expected, path = self._from_remote(expected, None)
        actual = check_download(self.weights_file(path), expected, self.label)
        self._record(self.weights_file(path), actual)
        return path, actual

    def _check_cached(self, file: Path) -> str:
        """The cached weights file's sha256, checked against the record (re-hashed when the file's
        state changed, or always with `recheck`) or, without a record, against what is known."""
        record = read_json(self._marker(), {})
        recorded = record.get("sha256") if isinstance(record, dict) else None
        if recorded and not self.recheck and record.get("state") == _state(file):
            return recorded
        expected = recorded or self._known_sha256(file)
        if expected is None:  # only the hub knows it
            expected, _ = self._from_remote(None, file)
        actual = sha256_of(file)
        if not actual.startswith(expected):
            blob = file.resolve()
            file.unlink(missing_ok=True)
            blob.unlink(missing_ok=True)  # a hub cache links the file to a blob: remove both
            source = "recorded when it was downloaded and verified" if recorded else "known for it"
            raise CheckpointError(
                f"cached {self.what or 'weights ' + self.label} at {file} are corrupt: {_mismatch(expected, file)} "
                f"({source}), got {actual}. The file was deleted and is never used; run `neurobench fetch` for the "
                "model with network access to download it again, or pass `--weights PATH` to a good copy.")
        self._record(file, actual)
        return actual

    def _known_sha256(self, file: Path) -> str | None:
        """The sha256 (or prefix) known without the network: the file-name prefix, or the name of the
        hub blob the cached file links to (the hub names LFS blobs by their sha256)."""
        if self.sha256 == "file-name":
            return self._name_prefix()
        blob = file.resolve().name
        return blob if is_digest(blob, "sha256") else None

    def _from_remote(self, expected: str | None, cached: Path | None) -> tuple[str, Path]:
        """What only the network gives: the hub's sha256 (unless `expected`) and a download (unless
        `cached`).  Offline or unreachable: CheckpointError naming the alternatives."""
        if offline():
            raise CheckpointError(self._unreachable(
                "NEUROBENCH_OFFLINE is set" + ("" if cached is None else ", and the cached copy is not verified")))
        try:
            if expected is None:
                expected = hub_lfs_sha256(self.repo_id, self.filename, self.revision)
            return expected, cached if cached is not None else self._download()
        except CheckpointError:
            raise
        except Exception as exc:  # offline, DNS, HTTP errors: many types
            raise CheckpointError(self._unreachable(f"{type(exc).__name__}: {exc}")) from exc

    def _download(self) -> Path:
        if self.url is not None:
            target = paths.inside(self.cache_dir, self.filename, "weights file")
            try:
                torch.hub.download_url_to_file(self.url, str(target), progress=False)
            except Exception:
                target.unlink(missing_ok=True)
                raise
            return target
        if self.is_folder:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.repo_id, revision=self.revision, cache_dir=self.cache_dir,
                                          allow_patterns=[*self.folder_files, self.filename, *self.extra_files]))
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(self.repo_id, self.filename, revision=self.revision, cache_dir=self.cache_dir))

    def _name_prefix(self) -> str:
        match = torch.hub.HASH_REGEX.search(self.filename)
        if match is None or not match.group(1):
            raise CheckpointError(f"{self.filename}: no sha256 prefix in the file name; refusing to use it unverified")
        return match.group(1)

    def _marker(self) -> Path:
        """Where the sha256 verified for this source's cached file is recorded."""
        key = hashlib.sha256("\0".join([self.repo_id or self.url or "", self.revision, self.cache,
                                          self.filename]).encode()).hexdigest()[:32]
        return paths.subdir("hub-verified") / f"{key}.json"

    def _record(self, file: Path, sha256: str) -> None:
        write_json(self._marker(), {"weights": self.label, "file": str(file), "sha256": sha256, "state": _state(file)})

    def _unreachable(self, why: str) -> str:
        what = self.what or f"weights {self.label}"
        local = self.local or f"a local copy of {self.filename}"
        return (
            f"{what} are not cached and cannot be downloaded ({why}). Run `neurobench fetch` with network "
            f"access, pass `--weights PATH` to {local}, or `--weights random` for an untrained network"
            f"{self.random_note}."
        )


def _state(file: Path) -> dict:
    return file_state(file)


def HubWeights(repo_id: str, filename: str, revision: str = "main") -> WeightSource:
    """A checkpoint file in a Hugging Face model repository, checked against the hub's sha256 on download."""
    return WeightSource(filename, repo_id=repo_id, revision=revision)


def VerifiedHubWeights(repo_id: str, filename: str, revision: str = "main") -> WeightSource:
    """A hub checkpoint used only once its sha256 equals the hub's; the cached copy is re-hashed on
    every use, not only when its file state changed (for files that need a pickle load)."""
    return WeightSource(filename, repo_id=repo_id, revision=revision, recheck=True)


def read_state_dict(path: str | Path, nested_key: str | None = None, strip_prefixes: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint with weights_only=True, optionally unwrap `ckpt[nested_key]`, strip prefixes."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); is it truncated, or not a torch state dict?"
        ) from exc
    if nested_key is not None:
        if not isinstance(obj, dict) or nested_key not in obj:
            raise CheckpointError(f"checkpoint {path}: expected the weights under key {nested_key!r}")
        obj = obj[nested_key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict (a mapping of names to tensors)")
    out = {}
    for key, value in obj.items():
        for prefix in strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_strict(module: torch.nn.Module, state: dict, source: str) -> None:
    """load_state_dict(strict=True) with an error that lists missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(expected) & set(state)) if state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) e.g. {missing[:4]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[:4]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[:3]}")
        raise CheckpointError(
            f"checkpoint {source} does not fit {type(module).__name__}: " + "; ".join(parts)
            + ". Is it for another architecture or release?"
        )
    module.load_state_dict(state, strict=True)
