"""Selectivity maps for contrasts between conditions (A > B), as language localisers define them.

Category selectivity (`selectivity`) tests each category against *all other* stimuli. Language
localisers instead contrast two named conditions and ignore the rest: sentences > nonword lists
(Fedorenko et al. 2010), nouns > verbs (Moseley & Pulvermüller 2014). A `Contrast` names the
conditions on each side; `contrast_selectivity` computes, per contrast, the same signatures as
`selectivity` (pooled-variance t map, selective fraction, patches, Moran's I) on the stimuli of
its two sides only, where the positive side is the "category" and the negative side the rest.
Pure functions: arrays in, results out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ._common import as_labels, as_responses
from .selectivity import SelectivityResult, TMaps, map_similarity, selectivity

_SPEC = re.compile(r"^\s*([^<>]+?)\s*>\s*([^<>]+?)\s*$")


@dataclass(frozen=True)
class Contrast:
    """`name`: positive side > negative side; each side is one or more condition labels.

    `source` says where the contrast comes from (a citation), for summaries and docs.
    """

    name: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        if not self.positive or not self.negative:
            raise InvalidInputError(f"contrast {self.name!r} needs conditions on both sides")
        both = set(self.positive) & set(self.negative)
        if both:
            raise InvalidInputError(f"contrast {self.name!r} has {sorted(both)} on both sides")

    @property
    def conditions(self) -> tuple[str, ...]:
        return self.positive + self.negative

    @classmethod
    def parse(cls, spec: str) -> Contrast:
        """'A>B' or 'A+B>C+D' (condition labels joined by '+'); the spec is also the name."""
        m = _SPEC.match(spec)
        if m is None:
            raise InvalidInputError(
                f"contrast {spec!r} is not of the form 'A>B' or 'A+B>C' (condition labels, '+' joins "
                "several on one side)"
            )
        pos, neg = (tuple(s.strip() for s in side.split("+") if s.strip()) for side in m.groups())
        return cls(spec.strip(), pos, neg)


def resolve_contrasts(specs: Sequence[Contrast | str], declared: Sequence[Contrast] = ()) -> list[Contrast]:
    """Contrast objects from objects, names of `declared` contrasts, or 'A+B>C' specs."""
    by_name = {c.name: c for c in declared}
    out = []
    for spec in specs:
        if isinstance(spec, Contrast):
            out.append(spec)
        elif spec in by_name:
            out.append(by_name[spec])
        else:
            out.append(Contrast.parse(spec))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"contrast names must be unique, got {names}")
    if not out:
        raise InvalidInputError("no contrasts given")
    return out


def contrast_selectivity(responses, labels, positions, contrasts: Sequence[Contrast | str], *,
                         threshold: float = 3.0, graph=None, connectivity: int = 8, n_perm: int = 199,
                         seed: int = 0, layer: str | None = None) -> SelectivityResult:
    """Per contrast: t map (positive vs negative side, pooled variance, on those stimuli only),
    selective fraction, patches and Moran's I, as `selectivity` computes them for a category.

    labels: one condition label per stimulus. Returns a SelectivityResult whose categories are the
    contrasts' names, in order; `tmaps.valid` marks units non-constant in every contrast, and
    `similarity` holds the correlations between the contrasts' t maps (None for one contrast, or
    when a map is flat).
    """
    x = as_responses(responses)
    lab = as_labels(labels, x.shape[0]).astype(str)
    cons = resolve_contrasts(contrasts)
    present = sorted(set(lab.tolist()))
    t_rows, per, valid, n_capped = [], {}, np.ones(x.shape[1], dtype=bool), 0
    for k, c in enumerate(cons):
        missing = [cond for cond in c.conditions if cond not in present]
        if missing:
            raise InvalidInputError(
                f"contrast {c.name!r}: no stimuli labelled {missing}; the labels are {present}"
            )
        rows = np.isin(lab, c.conditions)
        side = np.where(np.isin(lab[rows], c.positive), c.name, f"not {c.name}")
        res = selectivity(x[rows], side, positions, categories=[c.name], threshold=threshold, graph=graph,
                          connectivity=connectivity, n_perm=n_perm, seed=seed + 100 * k, layer=layer)
        per[c.name] = res.per_category[c.name]
        t_rows.append(res.tmaps.t[0])
        valid &= res.tmaps.valid
        n_capped += res.tmaps.n_capped
    tmaps = TMaps(categories=[c.name for c in cons], t=np.stack(t_rows), valid=valid,
                  n_constant=int((~valid).sum()), n_capped=n_capped)
    similarity = None
    if len(cons) > 1:
        try:
            similarity = map_similarity(tmaps)
        except InvalidInputError:  # a flat map: its correlations are undefined
            similarity = None
    return SelectivityResult(tmaps=tmaps, per_category=per, similarity=similarity, threshold=threshold)
