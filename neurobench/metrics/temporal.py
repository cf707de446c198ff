"""Time-resolved RSA for MEG/EEG: one data RDM per time point, every model layer against every
time point, time courses, peak latency and its bootstrap CI.

The data side reads MNE objects, so real recordings plug in directly: `Epochs` (conditions from
`event_id`, trials averaged per condition) or a list of `Evoked` (one per condition, in stimulus
order). Several subjects are a list of those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from .inference import bootstrap_indices, bootstrap_per_subject, percentile_ci
from .rdm import as_tensor, compute_rdms, upper_triangle
from .rsa import canonical_method, compare_rdms

log = logging.getLogger(__name__)


def condition_patterns(inst, conditions: list[str] | None = None, picks="data") -> tuple[np.ndarray, np.ndarray]:
    """(n_conditions, n_channels, n_times) condition-mean sensor patterns and the times (s).

    `inst`: mne.Epochs (conditions = `conditions` or all event_id keys, in that order) or a list
    of mne.Evoked (one per condition, in stimulus order).
    """
    import mne

    if isinstance(inst, mne.BaseEpochs):
        names = list(conditions) if conditions is not None else list(inst.event_id)
        missing = [c for c in names if c not in inst.event_id]
        if missing:
            raise InvalidInputError(f"conditions {missing} are not in the epochs' event_id {list(inst.event_id)}")
        data = np.stack([inst[c].get_data(picks=picks).mean(axis=0) for c in names])
        return data, inst.times.copy()
    if isinstance(inst, (list, tuple)) and inst and all(isinstance(e, mne.Evoked) for e in inst):
        times = inst[0].times
        if any(len(e.times) != len(times) or not np.allclose(e.times, times) for e in inst):
            raise InvalidInputError("all Evoked objects must share the same time axis")
        return np.stack([e.get_data(picks=picks) for e in inst]), times.copy()
    raise InvalidInputError("expected mne.Epochs or a list of mne.Evoked (one per condition)")


def data_rdms_over_time(inst, method: str = "correlation", conditions=None, picks="data",
                        device=None, dtype=None) -> tuple[torch.Tensor, np.ndarray]:
    """Condensed data RDMs (T, K), one per time point, and the times. Accepts a list of
    subjects too, then (S, T, K)."""
    if isinstance(inst, (list, tuple)) and inst and isinstance(inst[0], (list, tuple)) or (
            isinstance(inst, (list, tuple)) and inst and _is_epochs(inst[0])):
        parts = [data_rdms_over_time(i, method, conditions, picks, device, dtype) for i in inst]
        times = parts[0][1]
        if any(len(p[1]) != len(times) for p in parts):
            raise InvalidInputError("subjects have different numbers of time points")
        return torch.stack([p[0] for p in parts]), times
    pats, times = condition_patterns(inst, conditions, picks)
    x = as_tensor(np.transpose(pats, (2, 0, 1)), device, dtype)  # (T, n_cond, n_channels)
    return upper_triangle(compute_rdms(x, method)), times


def _is_epochs(obj) -> bool:
    try:
        import mne
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, mne.BaseEpochs)


@dataclass
class TemporalRSA:
    """Model-layer x time similarity with peak latencies (times in seconds)."""

    times: np.ndarray  # (T,)
    per_subject: torch.Tensor  # (L, S, T)
    timecourse: torch.Tensor  # (L, T) mean over subjects
    peak_latency: np.ndarray  # (L,) time of the maximum of the subject-mean time course
    peak_ci_low: np.ndarray  # (L,) percentile bootstrap CI of the peak latency (NaN if none)
    peak_ci_high: np.ndarray
    method: str
    n_bootstrap: int
    bootstrap: str
    seed: int
    peak_samples: np.ndarray | None = None  # (B, L) every resample's peak latency per layer (same draws for all layers)


def time_resolved_rsa(model_rdms, data_rdms, times, method: str = "spearman", n_bootstrap: int = 1000,
                      seed: int = 0, bootstrap: str | None = None, ci: float = 0.95,
                      backend: str = "auto") -> TemporalRSA:
    """Compare L model RDMs (L, K) with data RDMs over time, (T, K) or (S, T, K).

    Peak-latency CIs (percentile) resample subjects and stimuli together when S >= 2 (default:
    both sources of variance; an argmax is too rough a statistic for the corrected variance of
    `inference.two_factor_interval`), stimuli when S == 1; `bootstrap="subjects"` / `"stimuli"`
    resample one factor. The peak is the argmax of each resample's subject mean.
    """
    method = canonical_method(method)
    x = as_tensor(model_rdms)
    x = x.reshape(-1, x.shape[-1]) if x.ndim == 1 else x
    y = as_tensor(data_rdms, x.device, x.dtype)
    if y.ndim == 2:
        y = y[None]
    if y.ndim != 3:
        raise InvalidInputError(f"data RDMs must be (T, K) or (S, T, K); got {tuple(y.shape)}")
    s, t, k = y.shape
    times = np.asarray(times, dtype=float)
    if len(times) != t:
        raise InvalidInputError(f"{len(times)} times for {t} data RDMs per subject")
    per = compare_rdms(x, y, method, backend=backend)  # (L, S, T)
    course = per.mean(1)
    peak = times[course.argmax(-1).cpu().numpy()]
    lo = hi = np.full(x.shape[0], np.nan)
    kind = bootstrap or ("both" if s >= 2 else "stimuli")
    if n_bootstrap > 0:
        if kind in ("subjects", "both") and s < 2:
            raise InvalidInputError("bootstrapping subjects needs >= 2 subjects; use bootstrap='stimuli'")
        from .rdm import n_stimuli_from_length

        stim, subj = bootstrap_indices(n_stimuli_from_length(k), s, n_bootstrap, kind, seed)
        if stim is None:
            boot = per.permute(1, 0, 2)[torch.as_tensor(subj, device=per.device)]  # (B, S, L, T)
            boot = boot.mean(1)
        else:
            flat = bootstrap_per_subject(x, y.reshape(s * t, k), method, stim, backend)
            flat = flat.reshape(n_bootstrap, x.shape[0], s, t)
            if subj is not None:
                idx = torch.as_tensor(subj, device=flat.device)[:, None, :, None]
                flat = torch.gather(flat, 2, idx.expand(-1, x.shape[0], -1, t))
            boot = flat.mean(2)
        lat = torch.as_tensor(times, dtype=boot.dtype, device=boot.device)[boot.argmax(-1)]
        lo_t, hi_t = percentile_ci(lat, ci)
        lo, hi = lo_t.cpu().numpy(), hi_t.cpu().numpy()
        samples = lat.cpu().numpy()
    else:
        samples = None
    return TemporalRSA(times=times, per_subject=per, timecourse=course, peak_latency=peak,
                       peak_ci_low=lo, peak_ci_high=hi, method=method, n_bootstrap=n_bootstrap,
                       bootstrap=kind, seed=seed, peak_samples=samples)
