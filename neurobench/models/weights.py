"""Model weights: Hugging Face hub downloads (sha256-checked), local files, random init.

Checkpoints are always read with `torch.load(weights_only=True)`: no pickle code from outside runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import paths
from ..data.files import offline, sha256_of
from ..errors import CheckpointError

log = logging.getLogger(__name__)


def hub_lfs_sha256(repo_id: str, filename: str, revision: str = "main") -> str:
    """The sha256 the hub lists for a file (network call); files without one are refused."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    expected = next((s.lfs.sha256 for s in info.siblings if s.rfilename == filename and s.lfs), None)
    if expected is None:
        raise CheckpointError(f"{repo_id}: the hub lists no sha256 for {filename}; refusing to use it unverified")
    return expected


def check_download(path: Path, expected: str, label: str) -> None:
    """Delete a downloaded file and raise unless its sha256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"{label}: sha256 expected {expected}, got {actual}; deleted")


@dataclass(frozen=True)
class HubWeights:
    """A checkpoint file in a Hugging Face model repository."""

    repo_id: str
    filename: str
    revision: str = "main"

    @property
    def cache_dir(self) -> Path:
        return paths.subdir("hub")

    def cached_path(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(self.repo_id, self.filename, cache_dir=self.cache_dir, revision=self.revision)
        return Path(hit) if isinstance(hit, str) else None

    def fetch(self) -> Path:
        """Download (or find in the cache) and verify against the hub's LFS sha256."""
        cached = self.cached_path()
        if cached is not None:
            return cached
        if offline():
            raise CheckpointError(self._unreachable("NEUROBENCH_OFFLINE is set"))
        try:
            from huggingface_hub import hf_hub_download

            expected = hub_lfs_sha256(self.repo_id, self.filename, self.revision)
            path = Path(hf_hub_download(self.repo_id, self.filename, revision=self.revision, cache_dir=self.cache_dir))
        except CheckpointError:
            raise
        except Exception as exc:  # offline, DNS, HTTP errors: many types
            raise CheckpointError(self._unreachable(f"{type(exc).__name__}: {exc}")) from exc
        check_download(path, expected, f"{self.repo_id}/{self.filename}")
        return path

    def _unreachable(self, why: str) -> str:
        return (
            f"weights {self.repo_id}/{self.filename} are not cached and cannot be downloaded ({why}). "
            f"Run `neurobench fetch` with network access, pass `--weights PATH` to a local copy of "
            f"{self.filename}, or `--weights random` for an untrained network."
        )


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
