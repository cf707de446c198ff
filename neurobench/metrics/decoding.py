"""Decoding RDMs for MEG/EEG: how well a cross-validated linear classifier tells conditions apart.

Two named conventions, both pure torch (tensors in, tensors out; device and dtype explicit):

`pairwise_decoding_rdms` ("pairwise-lda-accuracy") follows the design of Cichy, Pantazis & Oliva
(2014): for every pair of conditions and every time bin, a binary linear classifier is trained on
the training trials of the two conditions and tested on their held-out trials; the RDM entry is
the cross-validated accuracy (0.5 = chance; higher = more dissimilar). The classifier is linear
discriminant analysis with one covariance shared by all conditions: the pooled within-condition
covariance of the training trials (residuals from each condition's mean), shrunk toward a scaled
identity by the Ledoit-Wolf formula (scikit-learn's `ledoit_wolf(residuals, assume_centered=True)`),
and equal priors. For the pair (i, j) a trial x is called i when

    (mu_i - mu_j)' S^-1 (x - (mu_i + mu_j) / 2) > 0,

i.e. when x is nearer mu_i than mu_j after whitening by S (multivariate noise normalisation,
Guggenmos et al. 2018). With one S for all pairs, every pair of every time bin costs one solve
per bin and fold, so all pairs and bins run at once. Cross-validation: `condition_folds` puts the
r-th trial of each condition (in recording order) in fold r mod k, so every fold holds out about
1/k of each condition's trials and every trial is tested once; accuracy pools the held-out
trials of both conditions over folds. Cichy et al. used a linear SVM on sub-averaged
pseudo-trials; we use single trials and LDA (closed form, so every pair and bin is batched;
Guggenmos, Sterzer & Cichy 2018 compare LDA, SVM and distance measures for MEG RDMs). Checked exactly against scikit-learn (Ledoit-Wolf
covariance, whitening, `NearestCentroid` per pair and bin) in `tests/metrics/test_decoding.py`.

`ovr_auc_rdms` ("ovr-logistic-auc") is the computation of MNE-Python's `decoding_rsa` example
(which says itself that it departs from Cichy et al.): features standardised on each training
fold, one-vs-rest L2 logistic regression (C = 1, intercept unpenalised, scikit-learn's objective,
fitted here by Newton's method to convergence), class probabilities normalised to sum to 1 over
classes, then ROC-AUC of the probability of class j for separating class i's trials from all the
others; the example mirrors the upper triangle (i <= j). The RDM entry is 1 - AUC (0.5 at
chance). It classifies all conditions at once, so it costs a Newton fit per class and window;
benchmarks use the pairwise convention.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError
from .ranks import average_ranks
from .rdm import as_tensor, upper_triangle


def condition_folds(labels, n_folds: int) -> np.ndarray:
    """Fold of each trial: the r-th trial of each condition (in the given order) goes to fold
    r mod n_folds. Needs every condition to have at least n_folds trials."""
    y = np.asarray(labels)
    if n_folds < 2:
        raise InvalidInputError(f"decoding needs >= 2 folds, got {n_folds}")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < n_folds:
        raise InvalidInputError(f"a condition has only {int(counts.min())} trials, fewer than the {n_folds} "
                                "folds; use fewer folds (every condition must be in every training fold)")
    folds = np.empty(len(y), dtype=np.int64)
    seen = np.zeros(len(counts), dtype=np.int64)
    for t, c in enumerate(inverse):
        folds[t] = seen[c] % n_folds
        seen[c] += 1
    return folds


def ledoit_wolf(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ledoit-Wolf shrunk covariance of centred samples x (..., n, p): ((..., p, p), shrinkage (...)),
    scikit-learn's `ledoit_wolf(x, assume_centered=True)` batched over leading axes."""
    n, p = x.shape[-2], x.shape[-1]
    emp = x.transpose(-1, -2) @ x / n
    trace = emp.diagonal(dim1=-2, dim2=-1).sum(-1)
    mu = trace / p
    beta_ = ((x * x).sum(-1) ** 2).sum(-1)  # sum over samples of |x|^4 = sum of <X2', X2>
    delta_ = (emp * emp).sum((-2, -1))  # sum((X'X)^2) / n^2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2 * mu * trace + p * mu**2) / p
    beta = torch.minimum(beta, delta)
    shrink = torch.where(beta == 0, torch.zeros_like(beta), beta / torch.where(delta == 0, 1, delta))
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    cov = (1 - shrink)[..., None, None] * emp + (shrink * mu)[..., None, None] * eye
    return cov, shrink


def _check_trials(trials, labels, folds, device, dtype):
    x = as_tensor(trials, device, dtype)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise InvalidInputError(f"trials must be (n_trials, n_channels[, n_times]); got shape {tuple(x.shape)}")
    y = np.asarray(labels)
    f = np.asarray(folds)
    if y.shape != (x.shape[0],) or f.shape != (x.shape[0],):
        raise InvalidInputError(f"{x.shape[0]} trials, {y.size} labels and {f.size} folds: give one of each per trial")
    if not torch.isfinite(x).all():
        raise InvalidInputError("trials hold NaN or inf values")
    classes, yi = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise InvalidInputError("decoding needs >= 2 conditions")
    for fold in np.unique(f):
        train = yi[f != fold]
        if len(np.unique(train)) < len(classes):
            raise InvalidInputError(f"fold {fold} leaves no training trial for some condition; every condition "
                                    "needs trials outside every fold")
    return x, yi, f, len(classes)


def pairwise_decoding_rdms(trials, labels, folds, *, device=None, dtype=None,
                           chunk_bytes: int = 256 * 2**20) -> torch.Tensor:
    """Cross-validated pairwise LDA accuracy (module docstring): trials (n, channels, times),
    labels (n,), folds (n,) -> condensed RDMs (times, K) over the sorted conditions."""
    x, y, f, c = _check_trials(trials, labels, folds, device, dtype)
    n, p, t = x.shape
    dev = x.device
    yt = torch.as_tensor(y, device=dev)
    counts = torch.zeros(t, c, c, dtype=torch.float64, device=dev)
    tested = torch.bincount(yt, minlength=c).to(torch.float64)
    per_bin = (n * p + 3 * p * p + 2 * c * p + n * c) * x.element_size()
    step = max(1, int(chunk_bytes // max(per_bin, 1)))
    xt = x.permute(2, 0, 1)  # (T, n, p)
    for t0 in range(0, t, step):
        block = xt[t0:t0 + step]
        for fold in np.unique(f):
            tr = torch.as_tensor(np.flatnonzero(f != fold), device=dev)
            te = torch.as_tensor(np.flatnonzero(f == fold), device=dev)
            xtr, ytr = block[:, tr], yt[tr]
            n_c = torch.bincount(ytr, minlength=c).to(block.dtype)
            means = torch.zeros(block.shape[0], c, p, dtype=block.dtype, device=dev).index_add_(1, ytr, xtr)
            means = means / n_c[None, :, None]
            cov, _ = ledoit_wolf(xtr - means[:, ytr])
            proj = torch.linalg.solve(cov, means.transpose(-1, -2))  # (B, p, C) = S^-1 mu'
            bias = 0.5 * (means * proj.transpose(-1, -2)).sum(-1)  # (B, C): mu' S^-1 mu / 2
            g = block[:, te] @ proj - bias[:, None, :]  # (B, n_te, C) discriminants
            yte = yt[te]
            own = g.gather(2, yte[None, :, None].expand(g.shape[0], -1, 1))
            correct = (own > g).to(torch.float64)  # trial of class i vs class j: right if g_i > g_j
            counts[t0:t0 + step].index_add_(1, yte, correct)
    acc = (counts + counts.transpose(-1, -2)) / (tested[:, None] + tested[None, :])
    return upper_triangle(acc)


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's StandardScaler fitted on train (population SD; a constant feature keeps scale 1)."""
    mean = train.mean(0)
    sd = train.std(0, correction=0)
    sd = torch.where(sd == 0, torch.ones_like(sd), sd)
    return (train - mean) / sd, (test - mean) / sd


def ovr_logistic_proba(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, n_classes: int,
                       c: float = 1.0, tol: float = 1e-10, max_iter: int = 100) -> torch.Tensor:
    """One-vs-rest L2 logistic regression (minimise ||w||^2 / 2 + C sum log-loss, intercept
    unpenalised) by Newton's method, all classes at once; returns the test probabilities
    normalised over classes, as scikit-learn's OneVsRestClassifier.predict_proba."""
    n, p = train.shape
    xa = torch.cat([train, torch.ones(n, 1, dtype=train.dtype, device=train.device)], 1)
    target = (labels[None, :] == torch.arange(n_classes, device=train.device)[:, None]).to(train.dtype)  # (C, n)
    theta = torch.zeros(n_classes, p + 1, dtype=train.dtype, device=train.device)
    penalty = torch.ones(p + 1, dtype=train.dtype, device=train.device)
    penalty[-1] = 0
    for _ in range(max_iter):
        prob = torch.sigmoid(theta @ xa.T)  # (C, n)
        grad = c * (prob - target) @ xa + penalty * theta
        weight = c * prob * (1 - prob)
        hess = torch.einsum("ni,cn,nj->cij", xa, weight, xa) + torch.diag(penalty)
        step = torch.linalg.solve(hess, grad[..., None])[..., 0]
        theta = theta - step
        if float(step.abs().max()) < tol:
            break
    ta = torch.cat([test, torch.ones(len(test), 1, dtype=test.dtype, device=test.device)], 1)
    out = torch.sigmoid(ta @ theta.T)
    total = out.sum(1, keepdim=True)
    return torch.where(total > 0, out / torch.where(total > 0, total, 1), out)


def ovr_auc_rdms(trials, labels, folds, *, c: float = 1.0, device=None, dtype=None) -> torch.Tensor:
    """MNE's `decoding_rsa` example's RDM (module docstring): trials (n, features) or (n, features,
    windows), labels, folds -> condensed 1 - AUC RDMs (windows, K) over the sorted conditions."""
    x, y, f, k = _check_trials(trials, labels, folds, device, dtype)
    n = x.shape[0]
    yt = torch.as_tensor(y, device=x.device)
    out = []
    for w in range(x.shape[2]):
        proba = torch.zeros(n, k, dtype=x.dtype, device=x.device)
        for fold in np.unique(f):
            tr = torch.as_tensor(np.flatnonzero(f != fold), device=x.device)
            te = torch.as_tensor(np.flatnonzero(f == fold), device=x.device)
            a, b = _standardise(x[tr, :, w], x[te, :, w])
            proba[te] = ovr_logistic_proba(a, yt[tr], b, k, c)
        ranks = average_ranks(proba.T.contiguous()).T  # (n, K): rank of each trial in each column
        rank_sums = torch.zeros(k, k, dtype=ranks.dtype, device=x.device).index_add_(0, yt, ranks)
        n_pos = torch.bincount(yt, minlength=k).to(ranks.dtype)[:, None]
        auc = (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))  # row: true class, col: column
        auc = torch.triu(auc) + torch.triu(auc, 1).T  # the example mirrors i <= j
        out.append(upper_triangle(1 - auc))
    return torch.stack(out)
