"""A neurobench plugin for the boundary fault-injection tests (`--plugin tests/faults/boundary_plugin.py`).

Tiny models (one normal, one whose forward pass raises, one that overflows to inf, one with a layer
of width 0, one with activations near 1e20) and benchmarks whose data (`boundary_data`) is wrong in
exactly one way each: RSA and time-resolved RSA with bad data RDMs, encoding with a plain numpy
assembly, constant responses, and a fixed split built in the assembly's order. The tests load it
with `--plugin` (or `registry.load_plugin`) and undo its registrations afterwards.
"""

from __future__ import annotations

import numpy as np
import torch

import neurobench as nb
from neurobench.kinds.encoding import EncodingBenchmark
from neurobench.kinds.temporal_rsa import TemporalData, TemporalRSABenchmark
from neurobench.metrics.splits import fixed_split
from tests.faults.boundary_data import (
    ASM_IDS,
    IDS,
    TEST_IDS,
    assembly,
    rdm_cases,
    responses,
    stimuli,
    temporal_cases,
)


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

for _case, _rdms in rdm_cases().items():
    def _factory(case=_case, rdms=_rdms):
        return nb.RSABenchmark(f"fault.{case}-rsa", f"data RDM: {case}", (), stimuli, lambda: (IDS, rdms, ""),
                               comparator="spearman", n_bootstrap=20)
    nb.register_benchmark(f"fault.{_case}-rsa", f"RSA whose data RDM is {_case}")(_factory)


for _case, _rdms in temporal_cases().items():
    def _tfactory(case=_case, rdms=_rdms):
        data = TemporalData(IDS, rdms, np.arange(5) * 0.02, ["sub1"])
        return TemporalRSABenchmark(f"fault.{case}-trsa", f"time-resolved data RDMs: {case}", (), stimuli,
                                    lambda: data, n_bootstrap=10, n_bootstrap_layers=10, n_bootstrap_latency=10,
                                    window=0.04)
    nb.register_benchmark(f"fault.{_case}-trsa", f"time-resolved RSA whose data RDMs are {_case}")(_tfactory)


# ------------------------------------------------------------------------------- encoding data

def _encoding(ident, load, **options):
    return EncodingBenchmark(ident, ident, (), stimuli, load, n_bootstrap=20, inner_cv=3, alphas=[1.0, 100.0],
                             **options)


@nb.register_benchmark("fault.numpy-encoding", "encoding whose assembly is a plain numpy array")
def numpy_encoding():
    return _encoding("fault.numpy-encoding", lambda: responses())


@nb.register_benchmark("fault.constant-encoding", "encoding whose responses are all constant")
def constant_encoding():
    return _encoding("fault.constant-encoding", lambda: assembly(constant=True), splits=4)


@nb.register_benchmark("fault.assembly-order-encoding", "a fixed split built in the assembly's order")
def assembly_order_encoding():
    split = fixed_split(ids=ASM_IDS, train_ids=[i for i in ASM_IDS if i not in TEST_IDS])
    return _encoding("fault.assembly-order-encoding", assembly, splits=split)


@nb.register_benchmark("fault.stimulus-order-encoding", "the same split built in the stimulus set's order")
def stimulus_order_encoding():
    split = fixed_split(ids=IDS, train_ids=[i for i in IDS if i not in TEST_IDS])
    return _encoding("fault.stimulus-order-encoding", assembly, splits=split)


@nb.register_benchmark("fault.positional-split-encoding", "a positional (mask) split given to a benchmark")
def positional_split_encoding():
    mask = np.asarray([i not in TEST_IDS for i in ASM_IDS])  # built in the assembly's order, without ids
    return _encoding("fault.positional-split-encoding", assembly, splits=fixed_split(mask))
