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

from .. import paths
from ..errors import ExtractionError, MemoryBudgetError

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
    transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    n_total: int | None = None,
    max_bytes: int | None = None,
) -> dict[str, np.ndarray]:
    """Run `module` over `batches`, returning each hooked layer's output flattened per stimulus.

    `transform(layer, output)` (e.g. a neurobench.readout.Readout) reduces each batch's output on
    the device before it is copied out. With `n_total`, results go straight into preallocated
    arrays (no concatenation copy), and `max_bytes` bounds their total size: the run stops after
    the first batch with MemoryBudgetError instead of running out of memory later.

    Any exception from the model is re-raised as ExtractionError after the hooks are removed;
    nothing is returned (and so nothing is cached) for a run that did not finish.
    """
    captured: dict[str, list[np.ndarray]] = {name: [] for name in layer_modules}
    filled: dict[str, np.ndarray] = {}
    offset = {"rows": 0}

    def make_hook(name):
        def hook(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            out = transform(name, out.detach()) if transform is not None else out.detach()
            rows = out.reshape(out.shape[0], -1).float().cpu().numpy()
            if n_total is None:
                captured[name].append(rows)
                return
            if name not in filled:
                filled[name] = np.empty((n_total, rows.shape[1]), dtype=np.float32)
            filled[name][offset["rows"]:offset["rows"] + rows.shape[0]] = rows

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layer_modules.items()]
    module.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                batch = batch.to(device) if isinstance(batch, torch.Tensor) else batch
                module(batch)
                if n_total is not None:
                    offset["rows"] += _batch_len(batch)
                    _check_budget(filled, max_bytes)
    except MemoryBudgetError:
        raise
    except Exception as exc:
        raise ExtractionError(f"the model raised during activation extraction: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
    if n_total is not None:
        if offset["rows"] != n_total:
            raise ExtractionError(f"expected {n_total} stimuli, the batches held {offset['rows']}")
        return filled
    return {name: np.concatenate(chunks, axis=0) for name, chunks in captured.items()}


def _batch_len(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return int(next(iter(batch.values())).shape[0])
    return len(batch)


def _check_budget(filled: dict[str, np.ndarray], max_bytes: int | None) -> None:
    if max_bytes is None:
        return
    total = sum(a.nbytes for a in filled.values())
    if total > max_bytes:
        sizes = ", ".join(f"{k}: {a.shape[1]} units" for k, a in filled.items())
        raise MemoryBudgetError(
            f"the requested activations need {total / 1e9:.2f} GB, over the budget of {max_bytes / 1e9:.2f} GB "
            f"({sizes}). Read fewer layers, pool them (Readout(pool='mean') or pool=k) or project them "
            "(Readout(project=k)), or raise NEUROBENCH_ACTIVATION_BUDGET_GB."
        )
