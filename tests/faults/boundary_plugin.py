"""A neurobench plugin for the boundary fault-injection tests (`--plugin tests/faults/boundary_plugin.py`).

Tiny models (one normal, one whose forward raises, one that overflows to inf, one with a layer of
width 0, one with activations near 1e20) and benchmarks whose data is wrong in exactly one way
each: RSA and time-resolved RSA with bad data RDMs, encoding with a plain numpy assembly, constant
responses, and a fixed split built in the assembly's order.
"""

from __future__ import annotations

import numpy as np
import torch

import neurobench as nb
from neurobench.data.assemblies import repeated_assembly
from neurobench.kinds.encoding import EncodingBenchmark
from neurobench.kinds.temporal_rsa import TemporalData, TemporalRSABenchmark
from neurobench.metrics.splits import fixed_split

N = 24
IDS = [f"img{i:02d}" for i in range(N)]
_rng = np.random.default_rng(12)
HIDDEN = _rng.standard_normal((N, 4))  # what the stimuli "are": their colours come from it
_IMAGES = [np.clip(128 + 40 * np.outer(np.ones(16 * 16), HIDDEN[i, :3]).reshape(16, 16, 3)
                   + _rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8) for i in range(N)]


def stimuli() -> nb.StimulusSet:
    return nb.StimulusSet("faults24", IDS, images=_IMAGES)


class Scale(torch.nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class Explodes(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("fault-explodes: the forward pass must not run in this test")


def _adapter(net, layers):
    return nb.TorchAdapter(net, layers=layers, preprocess=nb.ImagePreprocess(resize=16, crop=16), trained=False)


def _base(seed):
    torch.manual_seed(seed)
    return [torch.nn.Conv2d(3, 6, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten()]


@nb.register_model("fault-net", family="custom")
def fault_net(seed: int = 0):
    """Conv, ReLU, 2x2 pooling: 24 units."""
    return _adapter(torch.nn.Sequential(*_base(seed)), ["1", "3"])


@nb.register_model("fault-explodes", family="custom")
def fault_explodes(seed: int = 0):
    """Its forward pass raises: a run that reaches extraction says so."""
    return _adapter(torch.nn.Sequential(Explodes()), ["0"])


@nb.register_model("fault-overflow", family="custom")
def fault_overflow(seed: int = 0):
    """Layer '4' multiplies by 1e39, which is inf in float32."""
    return _adapter(torch.nn.Sequential(*_base(seed), Scale(1e39)), ["3", "4"])


@nb.register_model("fault-huge", family="custom")
def fault_huge(seed: int = 0):
    """Layer '4' multiplies by 1e20: finite in float32, but its squares are not."""
    return _adapter(torch.nn.Sequential(*_base(seed), Scale(1e20)), ["4"])


@nb.register_model("fault-wide0", family="custom")
def fault_wide0(seed: int = 0):
    """Layer '4' is a Linear with no outputs (width 0)."""
    return _adapter(torch.nn.Sequential(*_base(seed), torch.nn.Linear(24, 0)), ["3", "4"])


# ------------------------------------------------------------------------------- RSA data

def _distances() -> np.ndarray:
    return np.sqrt(((HIDDEN[:, None] - HIDDEN[None]) ** 2).sum(-1))


def _similarity() -> np.ndarray:
    return np.corrcoef(HIDDEN)


def rdm_cases() -> dict[str, np.ndarray]:
    """Data RDMs (1 subject) that are wrong in one way each; 'good' is right."""
    d = _distances()
    iu = np.triu_indices(N, 1)
    asym = d.copy()
    asym[2, 5] += 0.5
    diag = d + np.eye(N) * 0.3
    neg = d - np.median(d)
    np.fill_diagonal(neg, 0)
    cond = d[iu]
    inf, nan = cond.copy(), cond.copy()
    inf[7], nan[7] = np.inf, np.nan
    return {"good": d[None], "asymmetric": asym[None], "diagonal": diag[None], "similarity": _similarity()[None],
            "lower": np.tril(d)[None], "negative": neg[None], "short": cond[None, :-1], "inf": inf[None],
            "nan": nan[None], "constant": (1 - np.eye(N))[None]}


for _case, _rdms in rdm_cases().items():
    def _factory(case=_case, rdms=_rdms):
        return nb.RSABenchmark(f"fault.{case}-rsa", f"data RDM: {case}", (), stimuli, lambda: (IDS, rdms, ""),
                               comparator="spearman", n_bootstrap=20)
    nb.register_benchmark(f"fault.{_case}-rsa", f"RSA whose data RDM is {_case}")(_factory)


def temporal_cases() -> dict[str, np.ndarray]:
    """(1 subject, 5 times, n, n) data RDMs; the fault sits at time point 3."""
    good = np.stack([_distances() * (1 + 0.1 * t) for t in range(5)])[None]
    sim, lower = good.copy(), good.copy()
    sim[0, 3] = _similarity()
    lower[0, 3] = np.tril(lower[0, 3])
    return {"good": good, "similarity": sim, "lower": lower}


for _case, _rdms in temporal_cases().items():
    def _tfactory(case=_case, rdms=_rdms):
        data = TemporalData(IDS, rdms, np.arange(5) * 0.02, ["sub1"])
        return TemporalRSABenchmark(f"fault.{case}-trsa", f"time-resolved data RDMs: {case}", (), stimuli,
                                    lambda: data, n_bootstrap=10, n_bootstrap_layers=10, n_bootstrap_latency=10,
                                    window=0.04)
    nb.register_benchmark(f"fault.{_case}-trsa", f"time-resolved RSA whose data RDMs are {_case}")(_tfactory)


# ------------------------------------------------------------------------------- encoding data

def responses(constant: bool = False) -> np.ndarray:
    """(stimuli, 3 repetitions, 6 targets) driven by the hidden features, rows in IDS order."""
    rng = np.random.default_rng(5)
    if constant:
        return np.ones((N, 3, 6))
    return (HIDDEN @ rng.standard_normal((4, 6)))[:, None, :] + 0.3 * rng.standard_normal((N, 3, 6))


ASSEMBLY_ORDER = list(np.random.default_rng(9).permutation(N))  # the order a dataset's file lists the stimuli in
ASM_IDS = [IDS[i] for i in ASSEMBLY_ORDER]
TEST_IDS = ASM_IDS[-6:]  # the dataset's test set: the last 6 presentations of its file


def _assembly(constant: bool = False):
    return repeated_assembly(responses(constant)[ASSEMBLY_ORDER], ASM_IDS)


def _encoding(ident, load, **options):
    return EncodingBenchmark(ident, ident, (), stimuli, load, n_bootstrap=20, inner_cv=3, alphas=[1.0, 100.0],
                             **options)


@nb.register_benchmark("fault.numpy-encoding", "encoding whose assembly is a plain numpy array")
def numpy_encoding():
    return _encoding("fault.numpy-encoding", lambda: responses())


@nb.register_benchmark("fault.constant-encoding", "encoding whose responses are all constant")
def constant_encoding():
    return _encoding("fault.constant-encoding", lambda: _assembly(constant=True), splits=4)


@nb.register_benchmark("fault.assembly-order-encoding", "a fixed split built in the assembly's order")
def assembly_order_encoding():
    split = fixed_split(ids=ASM_IDS, train_ids=[i for i in ASM_IDS if i not in TEST_IDS])
    return _encoding("fault.assembly-order-encoding", _assembly, splits=split)


@nb.register_benchmark("fault.stimulus-order-encoding", "the same split built in the stimulus set's order")
def stimulus_order_encoding():
    split = fixed_split(ids=IDS, train_ids=[i for i in IDS if i not in TEST_IDS])
    return _encoding("fault.stimulus-order-encoding", _assembly, splits=split)


@nb.register_benchmark("fault.positional-split-encoding", "a positional (mask) split given to a benchmark")
def positional_split_encoding():
    mask = np.asarray([i not in TEST_IDS for i in ASM_IDS])  # built in the assembly's order, without ids
    return _encoding("fault.positional-split-encoding", _assembly, splits=fixed_split(mask))
