"""Hierarchy benchmarks over real data (Raugel et al. 2025; docs/hierarchy.md): which region
benchmarks each combines, and at which hierarchical position.

Spatial (per voxel, the relative depth of its best layer against its region's position):

- `hierarchy.nsd-ventral-spatial`: NSD V1 (1) < V2 (2) < V3 (3) < hV4 (4) < the category-selective
  ventral areas FFA, PPA (5; same rank: the ventral stream does not order them).
- `hierarchy.nsd-visual-spatial`: as above plus OFA, OPA and EBA at 5.
- `hierarchy.things-fmri-spatial`: THINGS-fMRI V1 (1) < V2 (2) < V3 (3) < hV4 (4) < LOC (5) <
  IT, FFA, PPA, EBA (6).

Temporal (per layer, the latency of its peak time course against its relative depth):

- `hierarchy.things-meg-temporal`: `things-meg.all-encoding` (ridge time courses).
- `hierarchy.things-meg-rsa-temporal`: `things-meg.all-rsa` (time-resolved RSA).
- `hierarchy.cichy2014-temporal`: `cichy2014.meg-rsa`.

They combine other benchmarks and score each of them, so they run only when named.
"""

from __future__ import annotations

from neurobench.kinds.hierarchy import HierarchyBenchmark
from neurobench.registry import register_benchmark

COMBINES = "a hierarchy benchmark scores each of the benchmarks it combines: name it to run it (--benchmark)"

SPATIAL: dict[str, tuple[str, list[tuple[str, float]]]] = {
    "nsd-ventral": ("NSD ventral stream V1 < V2 < V3 < hV4 < FFA, PPA",
                    [("nsd.v1-encoding", 1), ("nsd.v2-encoding", 2), ("nsd.v3-encoding", 3), ("nsd.hv4-encoding", 4),
                     ("nsd.ffa-encoding", 5), ("nsd.ppa-encoding", 5)]),
    "nsd-visual": ("NSD V1 < V2 < V3 < hV4 < FFA, OFA, PPA, OPA, EBA",
                   [("nsd.v1-encoding", 1), ("nsd.v2-encoding", 2), ("nsd.v3-encoding", 3), ("nsd.hv4-encoding", 4),
                    ("nsd.ffa-encoding", 5), ("nsd.ofa-encoding", 5), ("nsd.ppa-encoding", 5),
                    ("nsd.opa-encoding", 5), ("nsd.eba-encoding", 5)]),
    "things-fmri": ("THINGS-fMRI V1 < V2 < V3 < hV4 < LOC < IT, FFA, PPA, EBA",
                    [("things-fmri.v1-encoding", 1), ("things-fmri.v2-encoding", 2), ("things-fmri.v3-encoding", 3),
                     ("things-fmri.hv4-encoding", 4), ("things-fmri.loc-encoding", 5), ("things-fmri.it-encoding", 6),
                     ("things-fmri.ffa-encoding", 6), ("things-fmri.ppa-encoding", 6),
                     ("things-fmri.eba-encoding", 6)]),
}
TEMPORAL: dict[str, tuple[str, str]] = {
    "things-meg": ("THINGS-MEG all sensors, ridge encoding time courses", "things-meg.all-encoding"),
    "things-meg-rsa": ("THINGS-MEG all sensors, time-resolved RSA", "things-meg.all-rsa"),
    "cichy2014": ("Cichy et al. (2014) MEG, time-resolved RSA", "cichy2014.meg-rsa"),
}


def _spatial(name: str) -> None:
    what, components = SPATIAL[name]
    ident = f"hierarchy.{name}-spatial"

    def factory(**options):
        return HierarchyBenchmark(ident, factory.__doc__, "spatial", components, **options)

    factory.__doc__ = f"Spatial hierarchy score (Raugel et al. 2025): {what}"
    register_benchmark(ident, by_name_only=COMBINES)(factory)


def _temporal(name: str) -> None:
    what, component = TEMPORAL[name]
    ident = f"hierarchy.{name}-temporal"

    def factory(**options):
        return HierarchyBenchmark(ident, factory.__doc__, "temporal", [(component, 1.0)], **options)

    factory.__doc__ = f"Temporal hierarchy score (Raugel et al. 2025): {what}"
    register_benchmark(ident, by_name_only=COMBINES)(factory)


for _name in SPATIAL:
    _spatial(_name)
for _name in TEMPORAL:
    _temporal(_name)
