"""Stimulus ids: the one check that two objects list the same stimuli in the same order.

Rows are matched by position everywhere (activations, responses, RDM rows and columns), so every
pairing of two stimulus-indexed objects goes through `check_same_ids` first.  It lives outside
data/, models/, kinds/ and metrics/ so that all of them can use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .errors import AlignmentError

__all__ = ["check_same_ids"]


def _repeated(ids: list[str]) -> list[str]:
    return sorted(i for i, k in Counter(ids).items() if k > 1)


def check_same_ids(reference: Sequence, other: Sequence, reference_name: str = "the reference",
                   other_name: str = "the other", hint: str | None = None) -> None:
    """Raise AlignmentError unless `other` lists exactly the ids of `reference`, in the same order.

    Ids are compared as strings.  The message names the two objects and says what differs: the
    ids only one of them has (or ids one of them repeats), else the first position where the
    orders differ; then what to do (`hint` replaces the generic advice for different stimuli).
    """
    a, b = [str(i) for i in reference], [str(i) for i in other]
    if a == b:
        return
    if len(a) == len(b) and set(a) == set(b) and not _repeated(a):
        first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        raise AlignmentError(
            f"{reference_name} and {other_name} hold the same stimuli in a different order (first "
            f"difference at position {first}: {a[first]!r} in {reference_name}, {b[first]!r} in "
            f"{other_name}); rows are matched by position, so in another order they pair the wrong "
            f"stimuli: reorder {other_name} by stimulus id, never by position"
        )
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    parts = [f"{len(a)} vs {len(b)} ids"]
    for name, ids in ((reference_name, only_a), (other_name, only_b)):
        if ids:
            parts.append(f"{len(ids)} only in {name}, e.g. {ids[:3]}")
    for name, ids in ((reference_name, a), (other_name, b)):
        rep = _repeated(ids)
        if rep:
            parts.append(f"{len(rep)} repeated in {name}, e.g. {rep[:3]}")
    raise AlignmentError(
        f"{reference_name} and {other_name} describe different stimuli ({'; '.join(parts)}); "
        f"different stimulus sets cannot be matched row by row: "
        f"{hint or 'compute both over the same stimuli, in the same order'}"
    )
