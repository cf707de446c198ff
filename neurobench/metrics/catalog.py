"""The built-in representational-similarity metrics, registered by name (`neurobench list metrics`).

Loaded through the `neurobench.plugins` entry point `metrics`. Each factory returns a function
`(model, data, **kwargs) -> Tensor`; keyword arguments are passed on to the underlying function.
"""

from __future__ import annotations

from functools import partial

from ..registry import register_metric
from . import pls  # noqa: F401  (registers the 'pls' metric)
from .cka import linear_cka
from .rsa import compare_rdms
from .trsa import compare_rgdm, compare_trsa

_RSA = {
    "tau_a": "RSA, Kendall tau-a between condensed RDMs (exact, tie-aware; rsatoolbox 'tau-a')",
    "rho_a": "RSA, Spearman rho-a (no tie correction in the normaliser; rsatoolbox 'rho-a')",
    "spearman": "RSA, Spearman rank correlation between condensed RDMs",
    "pearson": "RSA, Pearson correlation between condensed RDMs (rsatoolbox 'corr')",
    "cosine": "RSA, cosine similarity between condensed RDMs",
    "corr_cov": "RSA, Pearson correlation after whitening the RDM entries (rsatoolbox 'corr_cov')",
    "cosine_cov": "RSA, cosine after whitening the RDM entries (rsatoolbox 'cosine_cov')",
}


def _rsa_factory(method: str):
    def factory():
        return partial(compare_rdms, method=method)

    return factory


for _method, _desc in _RSA.items():
    register_metric(f"rsa-{_method}", _desc, family="rsa", comparator=_method)(_rsa_factory(_method))


@register_metric("trsa", family="rsa", comparator="tau_a")
def trsa():
    """Topological RSA: tau-a between geo-topologically transformed RDMs (l=0.2, u=0.8)."""
    return partial(compare_trsa, method="tau_a", lower=0.2, upper=0.8)


@register_metric("trsa-rgdm", family="rsa", comparator="tau_a")
def trsa_rgdm():
    """Topological RSA: tau-a between the authors' two-step geodesic RDMs (RGDM, l=0.2, u=0.8)."""
    return partial(compare_rgdm, method="tau_a", lower=0.2, upper=0.8)


@register_metric("cka-linear", family="cka")
def cka_linear():
    """Linear centered kernel alignment between activations (Kornblith et al. 2019)."""
    return partial(linear_cka, debiased=False)


@register_metric("cka-debiased", family="cka")
def cka_debiased():
    """Debiased linear CKA (unbiased HSIC of Song et al. 2012), for many features per stimulus."""
    return partial(linear_cka, debiased=True)
