"""Activation extraction with forward hooks, and the HDF5 activation cache.

Cache entries are one HDF5 file per layer under
`NEUROBENCH_HOME/activations/<model>/<weights>/<stimuli>-<preprocess>/<layer>.h5`, so the key is
(model id, weights hash, stimulus-set hash, preprocessing, layer). Files are written to a temporary
name and renamed into place, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import h5py
import numpy as np
import torch

from . import paths
from .errors import ExtractionError

log = logging.getLogger(__name__)
CACHE_FORMAT = 1


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


class ActivationCache:
    """Content-keyed store of activation matrices (n_stimuli, n_units) per layer."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else paths.subdir("activations")

    def entry_dir(self, model_id: str, weights_id: str, stimuli_hash: str, preprocess_id: str) -> Path:
        prep = hashlib.sha256(preprocess_id.encode()).hexdigest()[:12]
        return self.root / _safe(model_id) / _safe(weights_id)[:24] / f"{stimuli_hash[:16]}-{prep}"

    def path(self, entry: Path, layer: str) -> Path:
        return entry / f"{_safe(layer)}.h5"

    def load(self, entry: Path, layer: str, expect_ids: list[str]) -> np.ndarray | None:
        path = self.path(entry, layer)
        if not path.exists():
            return None
        try:
            with h5py.File(path, "r") as fh:
                ids = [s.decode() if isinstance(s, bytes) else str(s) for s in fh["stimulus_ids"][()]]
                if fh.attrs.get("format") != CACHE_FORMAT or ids != expect_ids or fh.attrs.get("layer") != layer:
                    log.warning("ignoring stale activation cache entry %s", path)
                    return None
                return fh["activations"][()]
        except (OSError, KeyError) as exc:
            log.warning("ignoring unreadable activation cache entry %s (%s)", path, exc)
            return None

    def save(self, entry: Path, layer: str, ids: list[str], values: np.ndarray, meta: dict) -> Path:
        entry.mkdir(parents=True, exist_ok=True)
        final = self.path(entry, layer)
        fd, tmp = tempfile.mkstemp(dir=entry, suffix=".h5.part")
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as fh:
                fh.create_dataset("activations", data=values)
                fh.create_dataset("stimulus_ids", data=np.array(ids, dtype=h5py.string_dtype()))
                fh.attrs["format"] = CACHE_FORMAT
                fh.attrs["layer"] = layer
                for k, v in meta.items():
                    fh.attrs[k] = v
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final


def run_hooked(
    module: torch.nn.Module,
    layer_modules: dict[str, torch.nn.Module],
    batches: Iterable[torch.Tensor],
    device: torch.device,
    forward: Callable[[torch.nn.Module, torch.Tensor], object] | None = None,
) -> dict[str, np.ndarray]:
    """Run `module` over `batches`, returning each hooked layer's output flattened per stimulus.

    Any exception from the model is re-raised as ExtractionError after the hooks are removed;
    nothing is returned (and so nothing is cached) for a run that did not finish.
    """
    captured: dict[str, list[np.ndarray]] = {name: [] for name in layer_modules}

    def make_hook(name):
        def hook(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            captured[name].append(out.detach().reshape(out.shape[0], -1).float().cpu().numpy())

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layer_modules.items()]
    module.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                batch = batch.to(device) if isinstance(batch, torch.Tensor) else batch
                (forward or (lambda m, b: m(b)))(module, batch)
    except Exception as exc:
        raise ExtractionError(f"the model raised during activation extraction: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
    return {name: np.concatenate(chunks, axis=0) for name, chunks in captured.items()}
