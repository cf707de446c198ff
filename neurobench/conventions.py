"""The named conventions of neurobench's numbers: normalisations and intervals, one registry.

Every `Scores` / `ScoreResult`, stored row and exported row names the convention of its
`normalized` value (`normalization`) and of its `ci_low` / `ci_high` (`interval`); a value
under another convention (Brain-Score's explained variance of a Majaj-Hong PLS score) is
reported next to it under that convention's name (`other_normalizations`), never in the same
column. `docs/conventions.md` is the table of these entries (a test checks that every name here
appears there).

A cross-cutting module like `errors`: it imports nothing of the package, and every stage may
use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInputError

__all__ = [
    "Convention", "CONVENTIONS", "convention", "conventions", "check_convention",
    "EXPLAINABLE_VARIANCE_FRACTION", "BRAINSCORE_EXPLAINED_VARIANCE", "NILI_LOWER", "NO_NORMALIZATION",
    "STIMULI", "STIMULI_NORMAL", "SUBJECTS", "SUBJECTS_STIMULI_CORRECTED", "SUBJECTS_STIMULI_PERCENTILE", "NO_INTERVAL",
    "UNRECORDED", "NORMALIZATIONS", "INTERVALS", "TARGETS_IN_REGIONS", "SUBJECTS_TARGETS_IN_REGIONS",
    "CHECKPOINTS_NORMAL",
]


@dataclass(frozen=True)
class Convention:
    """One named convention: what kind of number it governs, its definition, its source and
    which benchmarks use it (one row of the table in docs/conventions.md)."""

    kind: str  # "normalization" or "interval" (issue 13 part B adds "rdm", "smoothness")
    name: str
    definition: str
    source: str
    used_by: str


# ---------------------------------------------------------------------------- normalisations
EXPLAINABLE_VARIANCE_FRACTION = "explainable_variance_fraction"
BRAINSCORE_EXPLAINED_VARIANCE = "brainscore_explained_variance"
NILI_LOWER = "nili_lower"
NO_NORMALIZATION = "none"
# ---------------------------------------------------------------------------- intervals
STIMULI = "stimuli"
STIMULI_NORMAL = "stimuli (normal approximation)"
SUBJECTS = "subjects"
SUBJECTS_STIMULI_CORRECTED = "subjects+stimuli (Schütt 2023 corrected)"
SUBJECTS_STIMULI_PERCENTILE = "subjects+stimuli (percentile)"
NO_INTERVAL = "none"
TARGETS_IN_REGIONS = "targets within regions (percentile)"
SUBJECTS_TARGETS_IN_REGIONS = "subjects, then targets within regions (percentile)"
CHECKPOINTS_NORMAL = "checkpoints (normal approximation)"
# rows stored before conventions were recorded (results store schema 1) by a kind neurobench
# cannot identify: their convention is unknown
UNRECORDED = "unrecorded"

_ENTRIES = [
    Convention(
        "normalization", EXPLAINABLE_VARIANCE_FRACTION,
        "median over targets with a usable ceiling of sign(r_t) r_t^2 / c_t: r_t the held-out Pearson r of "
        "target t, c_t its ceiling in r^2 units (split-half Spearman-Brown reliability of the "
        "repetition-averaged response, or the dataset's own: NSD ncsnr, THINGS-fMRI noise ceiling, Pereira "
        "cross-subject r^2); targets with c_t <= 0 are excluded and counted; per-subject benchmarks: mean over "
        "subjects. 1 = the fraction of explainable variance a perfect model explains",
        "neurobench (`metrics.ceiling.normalize_scores`); the per-target noise-ceiling-normalised r^2 of "
        "Allen et al. (2022, NSD)",
        "every `*-encoding` benchmark; `majajhong2015.*-pls` (per neuroid, r = mean over the 10 splits)"),
    Convention(
        "normalization", BRAINSCORE_EXPLAINED_VARIANCE,
        "(r / c)^2 with r the median over neuroids of held-out Pearson r (mean over splits) and c the median "
        "over neuroids of the split-half Spearman-Brown internal consistency (mean over splits); no sign is "
        "kept. Assumes r(X, X) ~ r(Y, Y) (Yamins et al. 2014), so a perfect model scores ~1 / c, not 1",
        "Brain-Score: `explained_variance` in brainscore_vision/benchmark_helpers/neural_common.py "
        "(`NeuralBenchmark.__call__`)",
        "`majajhong2015.*-pls` (reported next to the primary score, for comparison with Brain-Score)"),
    Convention(
        "normalization", NILI_LOWER,
        "raw / lower bound of the Nili et al. (2014) noise ceiling: the mean over subjects of each subject's "
        "RDM compared with the pooled RDM of the other subjects (pooling matched to the comparator)",
        "Nili et al. (2014) PLoS Comput Biol 10:e1003553; rsatoolbox `boot_noise_ceiling`",
        "multi-subject RSA: `kriegeskorte2008.hit-rsa`, `.hit-trsa`, `things-fmri.*-rsa`, "
        "`things-meg.*-rsa` (at the chosen window)"),
    Convention(
        "normalization", NO_NORMALIZATION,
        "no normalised value: the data give no ceiling (a single RDM) or the number is a property of the "
        "model, not a brain score (topographic signatures); `raw` is in the metric's own units",
        "-",
        "`kriegeskorte2008.mit-rsa`, `.mit-trsa`, `cichy2014.meg-rsa`, `topo.*`"),
    Convention(
        "interval", STIMULI,
        "95% percentile bootstrap over stimuli (seeded; subjects held fixed); for RSA the pairs of a stimulus "
        "with its own copy are dropped as in rsatoolbox's `bootstrap_sample_pattern`; encoding: predictions, "
        "responses and the split-half ceiling resampled together",
        "Efron & Tibshirani (1993); rsatoolbox `inference/bootstrap.py`",
        "single-subject benchmarks (`*.mit-rsa`, `cichy2014.meg-rsa`, `majajhong2015.*`, single-subject "
        "encoding); any RSA benchmark with `-o bootstrap=stimuli`"),
    Convention(
        "interval", STIMULI_NORMAL,
        "estimate +- z(0.975) SE, SE the standard deviation of a stimulus bootstrap (1,000 resamples, seeded)",
        "Efron & Tibshirani (1993), normal bootstrap interval",
        "`topo.effective-dim` per layer (participation ratio)"),
    Convention(
        "interval", SUBJECTS,
        "95% percentile bootstrap over subjects (seeded; stimuli held fixed)",
        "rsatoolbox `bootstrap_sample_rdm`",
        "`-o bootstrap=subjects` (RSA); `hierarchy.*-temporal` (temporal score and per-layer peak latencies)"),
    Convention(
        "interval", SUBJECTS_STIMULI_CORRECTED,
        "estimate +- t(0.975, min(S, n) - 1) sqrt(v): v the two-factor bootstrap variance corrected for "
        "double-counted noise, v = S/(S-1) v_subj + n/(n-1) v_stim - S n/((S-1)(n-1)) (v_both - v_subj - "
        "v_stim), bounded below by each single-factor term and above by v_both; v_both, v_subj, v_stim are the "
        "variances over the same bootstrap draws resampling both, only subjects, only stimuli (S subjects, "
        "n stimuli)",
        "Schütt et al. (2023) eLife 12:e82566, 'Statistical inference on representational geometries'; "
        "rsatoolbox `eval_dual_bootstrap` (inference/evaluate.py) and `_dual_bootstrap` "
        "(util/inference_util.py)",
        "multi-subject RSA (`kriegeskorte2008.hit-rsa`, `.hit-trsa`, `things-fmri.*-rsa`, `things-meg.*-rsa`), "
        "encoding combined over >= 2 subjects (`nsd.*`, `things-fmri.*-encoding`, `things-meg.*-encoding`, "
        "`pereira2018.*`)"),
    Convention(
        "interval", SUBJECTS_STIMULI_PERCENTILE,
        "95% percentile interval of a two-factor bootstrap (subjects and stimuli resampled together), "
        "uncorrected: conservative (it counts measurement noise twice); used where the statistic is not "
        "smooth enough for a variance-based interval",
        "rsatoolbox `bootstrap_sample`",
        "peak latency of time-resolved RSA with >= 2 subjects (`things-meg.*-rsa`); the temporal hierarchy score "
        "over it (`hierarchy.things-meg-rsa-temporal`)"),
    Convention(
        "interval", TARGETS_IN_REGIONS,
        "95% percentile bootstrap of a spatial hierarchy score over targets (voxels), resampled within each "
        "region (the count per region kept); one subject",
        "neurobench (`metrics.hierarchy.spatial_score`); docs/hierarchy.md",
        "`hierarchy.*-spatial` with one subject"),
    Convention(
        "interval", SUBJECTS_TARGETS_IN_REGIONS,
        "95% percentile bootstrap of a spatial hierarchy score: subjects resampled with replacement, then the "
        "targets (voxels) of each drawn subject resampled within each region; per-voxel best layers are not "
        "re-estimated (the stimuli are held fixed)",
        "neurobench (`metrics.hierarchy.spatial_score`); docs/hierarchy.md",
        "`hierarchy.*-spatial` with >= 2 subjects"),
    Convention(
        "interval", CHECKPOINTS_NORMAL,
        "95% percentile interval of a chronology half-step: each checkpoint's score redrawn from a normal with "
        "SD (ci_high - ci_low) / (2 z_0.975) of its own stored 95% interval, independently across "
        "checkpoints, and the half-step recomputed (1,000 draws, seeded)",
        "neurobench (`metrics.hierarchy.chronology`); docs/hierarchy.md",
        "`neurobench chronology` (half-steps; not a stored score)"),
    Convention(
        "interval", NO_INTERVAL,
        "no interval (no resamples asked for, or a statistic without one)",
        "-",
        "`-o n_bootstrap=0`; `topo.smoothness`, `topo.face-selectivity-clusters`; topo headlines"),
    Convention(
        "normalization", UNRECORDED,
        "unknown: a row stored before conventions were recorded (results store schema 1) by a benchmark kind "
        "the schema-3 migration cannot identify (a plugin's metric)",
        "neurobench.store migration to schema 2",
        "rows of schema-1 stores only"),
    Convention(
        "interval", UNRECORDED,
        "unknown: as the normalisation of the same name",
        "neurobench.store migration to schema 2",
        "rows of schema-1 stores only"),
]

CONVENTIONS: dict[str, Convention] = {}
for _c in _ENTRIES:
    CONVENTIONS[f"{_c.kind}:{_c.name}"] = _c

NORMALIZATIONS = tuple(c.name for c in _ENTRIES if c.kind == "normalization")
INTERVALS = tuple(c.name for c in _ENTRIES if c.kind == "interval")


def conventions(kind: str | None = None) -> list[Convention]:
    """The registered conventions (of one kind), in table order."""
    return [c for c in CONVENTIONS.values() if kind is None or c.kind == kind]


def convention(kind: str, name: str) -> Convention:
    """The convention of `kind` called `name` (InvalidInputError naming the known ones)."""
    found = CONVENTIONS.get(f"{kind}:{name}")
    if found is None:
        known = [c.name for c in conventions(kind)]
        raise InvalidInputError(f"unknown {kind} convention {name!r}; neurobench names these: {known} "
                                "(docs/conventions.md defines each)")
    return found


def check_convention(kind: str, name: str | None, what: str) -> str:
    """`name` if it is a registered convention of `kind`; otherwise InvalidInputError saying what
    must name it (`what`)."""
    if not isinstance(name, str) or f"{kind}:{name}" not in CONVENTIONS:
        known = [c.name for c in conventions(kind)]
        raise InvalidInputError(f"{what} must name its {kind} convention, one of {known} "
                                f"(see docs/conventions.md); got {name!r}")
    return name
