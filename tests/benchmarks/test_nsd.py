"""NSD benchmarks on a miniature release: true file formats and layout, tiny sizes.

The miniature has 2 subjects x 2 sessions of 40 trials (750 in the release), a 6x7x5 volume
(81x104x83 for subj01 at 1.8 mm), 80 images of 16x16 (73k of 425x425), 8 shared images (1000).
Responses are a known linear map of a tiny model's features plus noise. subj01's betas are
HDF5 (`/betas`, int16, h5py axis order trials x Z x Y x X), subj02's NIfTI (X x Y x Z x trials),
so both readers are checked against the same independent reference (scipy z-scores, pandas
repetition means, scikit-learn Ridge with the alpha pinned, numpy noise ceiling).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.stats

import neurobench as nb
from neurobench.benchmarks import nsd
from neurobench.cli import main
from neurobench.errors import AlignmentError, DataUnavailableError, InvalidInputError
from neurobench.registry import models
from neurobench.store import ResultStore

X, Y, Z = 6, 7, 5
TRIALS = 40
SESSIONS = (1, 2)
N_BRICK, N_SHARED, N_OWN = 80, 8, 32
SUBJECTS = ("subj01", "subj02")
AFFINE = np.diag([1.8, 1.8, 1.8, 1.0])
LABELS = {
    "prf-visualrois": ["Unknown", "V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
    "floc-faces": ["Unknown", "OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"],
    "floc-places": ["Unknown", "OPA", "PPA", "RSC"],
    "floc-bodies": ["Unknown", "EBA", "FBA-1", "FBA-2", "mTL-bodies"],
}
VOXELS_PER_LABEL = {"V1v": 5, "V1d": 5, "V2v": 3, "V2d": 3, "V3v": 2, "V3d": 2, "hV4": 4,
                    "OFA": 3, "FFA-1": 4, "FFA-2": 3, "mTL-faces": 2, "OPA": 3, "PPA": 4, "RSC": 2, "EBA": 5,
                    "FBA-1": 2}
ABSENT = {"subj02": {"FFA-1", "FFA-2"}}  # subj02 has no FFA in its floc-faces mask
PLUGIN = '''
import torch
import neurobench as nb


@nb.register_model("nsd-tiny", family="custom")
def nsd_tiny(seed: int = 0):
    """4x4 and 8x8 average pools of the pixels: the features the miniature responses are made of."""
    net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.AvgPool2d(2), torch.nn.Flatten())
    pre = nb.ImagePreprocess(resize=16, crop=16, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return nb.TorchAdapter(net, layers=["0", "1"], preprocess=pre, trained=False)
'''


@dataclass
class Truth:
    """What the generator wrote, kept in memory for the reference computation."""

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray
    images: np.ndarray
    betas: dict = field(default_factory=dict)  # subject -> [(X, Y, Z, T) int16 per session]
    rois: dict = field(default_factory=dict)  # subject -> {family: (X, Y, Z) int16}
    ncsnr: dict = field(default_factory=dict)  # subject -> (X, Y, Z) float32

    def trial_images(self, subject: str, session: int) -> np.ndarray:
        cols = self.masterordering[(session - 1) * TRIALS: session * TRIALS]
        return self.subjectim[int(subject[-2:]) - 1, cols - 1]


def _design(rng) -> Truth:
    ids = rng.permutation(N_BRICK) + 1
    shared = np.sort(ids[:N_SHARED])
    own = {s: ids[N_SHARED + k * N_OWN: N_SHARED + (k + 1) * N_OWN] for k, s in enumerate(SUBJECTS)}
    subjectim = np.stack([rng.choice(N_BRICK, N_SHARED + N_OWN, replace=False) + 1 for _ in range(8)])
    for k, s in enumerate(SUBJECTS):
        subjectim[k] = np.concatenate([rng.permutation(shared), own[s]])
    # columns 1-8 are the shared images: ragged repeats 3,3,3,2,2,3,1,3; the 32 own ones 2 (28) or 1 (4)
    counts = np.array([3, 3, 3, 2, 2, 3, 1, 3] + [2] * 28 + [1] * 4)
    trials = rng.permutation(np.repeat(np.arange(1, N_SHARED + N_OWN + 1), counts))
    order = np.concatenate([trials, rng.integers(1, N_SHARED + N_OWN + 1, TRIALS)])  # a 3rd session not released
    images = rng.integers(0, 256, size=(N_BRICK, 16, 16, 3), dtype=np.uint8)
    return Truth(order, subjectim, shared, images)


def _features(images: np.ndarray) -> np.ndarray:
    """The tiny model's layer '0' by hand: 4x4 block means of pixel / 255, (channel, row, col) order."""
    x = images.astype(np.float64) / 255.0
    return x.reshape(len(x), 4, 4, 4, 4, 3).mean(axis=(2, 4)).transpose(0, 3, 1, 2).reshape(len(x), -1)


def _roi_volume(rng, family: str, subject: str) -> np.ndarray:
    vol = np.full((X, Y, Z), -1, dtype=np.int16)
    vol[1:-1, 1:-1, :] = 0  # the "brain"
    inside = np.argwhere(vol == 0)
    free = list(rng.permutation(len(inside)))
    for value, name in enumerate(LABELS[family]):
        for _ in range(VOXELS_PER_LABEL.get(name, 0) if name not in ABSENT.get(subject, ()) else 0):
            vol[tuple(inside[free.pop()])] = value
    return vol


def _ctab(family: str) -> str:
    return "".join(f"{value} {name}\n" for value, name in enumerate(LABELS[family]))


def build(miniature, *, beta_shape_subj01=None, drop_design_key=None, brick_images=N_BRICK) -> Truth:
    """Write a miniature NSD in the release layout and publish it; returns the ground truth."""
    rng = np.random.default_rng(2022)
    truth = _design(rng)
    root = miniature.folder("nsd")
    design = {"masterordering": truth.masterordering[None].astype(np.float64),
              "subjectim": truth.subjectim.astype(np.float64), "sharedix": truth.sharedix[None].astype(np.float64)}
    design.pop(drop_design_key, None)
    (root / nsd.DESIGN).parent.mkdir(parents=True)
    scipy.io.savemat(root / nsd.DESIGN, design)
    (root / nsd.STIMULI).parent.mkdir(parents=True)
    with h5py.File(root / nsd.STIMULI, "w") as fh:
        fh.create_dataset("imgBrick", data=truth.images[:brick_images], chunks=(1, 16, 16, 3))
    feats = _features(truth.images)
    weights = rng.standard_normal((feats.shape[1], X * Y * Z))
    signal = feats @ weights
    signal = ((signal - signal.mean(0)) / signal.std(0)).reshape(N_BRICK, X, Y, Z)
    for subject in SUBJECTS:
        truth.rois[subject] = {f: _roi_volume(rng, f, subject) for f in LABELS}
        for family, vol in truth.rois[subject].items():
            mask = root / nsd.ROI_MASK.format(subject=subject, family=family)
            mask.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(vol, AFFINE), mask)
            ctab = root / nsd.ROI_CTAB.format(subject=subject, family=family)
            ctab.parent.mkdir(parents=True, exist_ok=True)
            ctab.write_text(_ctab(family))
        brain = truth.rois[subject]["prf-visualrois"] >= 0
        truth.ncsnr[subject] = np.where(brain, rng.uniform(0.1, 1.2, (X, Y, Z)), 0).astype(np.float32)
        beta_dir = root / nsd.BETA_DIR.format(subject=subject)
        beta_dir.mkdir(parents=True)
        nib.save(nib.Nifti1Image(truth.ncsnr[subject], AFFINE), beta_dir / "ncsnr.nii.gz")
        noise_sd = rng.uniform(0.5, 2.0, (X, Y, Z))
        truth.betas[subject] = []
        for session in SESSIONS:
            shown = truth.trial_images(subject, session)
            pct = (1.5 * signal[shown - 1] + noise_sd * rng.standard_normal((TRIALS, X, Y, Z))
                   + rng.normal(0, 1, (X, Y, Z)))  # + a session offset per voxel
            betas = np.where(brain, np.round(pct * nsd.BETA_SCALE), 0).astype(np.int16).transpose(1, 2, 3, 0)
            truth.betas[subject].append(betas)
            if subject == "subj01":
                data = betas.transpose(3, 2, 1, 0)  # MATLAB X x Y x Z x 750 reads as 750 x Z x Y x X in h5py
                if beta_shape_subj01 and session == 2:
                    data = np.zeros(beta_shape_subj01, dtype=np.int16)
                with h5py.File(beta_dir / f"betas_session{session:02d}.hdf5", "w") as fh:
                    fh.create_dataset("betas", data=data, chunks=(data.shape[0], 1, 1, 1))
            else:
                nib.save(nib.Nifti1Image(betas, AFFINE), beta_dir / f"betas_session{session:02d}.nii.gz")
    groups = {f"{prefix}/{s}/": s for s in SUBJECTS for prefix in ("nsddata_betas/ppdata", "nsddata/ppdata",
                                                                     "nsddata/freesurfer")}
    miniature.publish("nsd", groups=groups)
    return truth


def reference(truth: Truth, subject: str, region: str, acts: np.ndarray, stimulus_ids: list[str], alpha: float):
    """Per-voxel test r and ceiling, computed independently from the generator's arrays."""
    from sklearn.linear_model import Ridge

    _name, family, labels = nsd.REGIONS[region]
    values = [LABELS[family].index(lab) for lab in labels]
    voxels = np.argwhere(np.isin(truth.rois[subject][family], values))
    frames = []
    for session, betas in zip(SESSIONS, truth.betas[subject]):
        pct = betas[voxels[:, 0], voxels[:, 1], voxels[:, 2]].T.astype(np.float64) / 300.0  # trials x voxels
        z = scipy.stats.zscore(pct, axis=0, ddof=1)
        frames.append(pd.DataFrame(z).assign(image=truth.trial_images(subject, session)))
    trials = pd.concat(frames)
    mean = trials.groupby("image").mean().sort_index()
    reps = trials.groupby("image").size().sort_index()
    ids = [f"nsd-{i:05d}" for i in mean.index]
    rows = [stimulus_ids.index(s) for s in ids]
    test = np.isin(mean.index.to_numpy(), truth.sharedix)
    model = Ridge(alpha=alpha, fit_intercept=True).fit(acts[rows][~test], mean.to_numpy()[~test])
    pred, obs = model.predict(acts[rows][test]), mean.to_numpy()[test]
    r = np.array([np.corrcoef(pred[:, v], obs[:, v])[0, 1] for v in range(obs.shape[1])])
    snr2 = truth.ncsnr[subject][voxels[:, 0], voxels[:, 1], voxels[:, 2]].astype(np.float64) ** 2
    ceiling = snr2 / (snr2 + np.mean(1.0 / reps.to_numpy()[test]))
    return pd.DataFrame({"voxel_i": voxels[:, 0], "voxel_j": voxels[:, 1], "voxel_k": voxels[:, 2],
                         "r_ref": r, "ceiling_ref": ceiling})


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "nsd_tiny_plugin.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location(f"neurobench_user_plugin_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield path
    models.remove("nsd-tiny")
    sys.modules.pop(spec.name, None)


def _median_scores(frame: pd.DataFrame) -> tuple[float, float]:
    ok = np.isfinite(frame["ceiling_ref"]) & (frame["ceiling_ref"] > 0) & np.isfinite(frame["r_ref"])
    r, c = frame["r_ref"][ok], frame["ceiling_ref"][ok]
    return float(np.median(r)), float(np.median(np.sign(r) * r * r / c))


def test_api_matches_sklearn_ridge_and_numpy_ceiling(miniature, plugin, tmp_path):
    truth = build(miniature)
    bench = nsd.NSDEncodingBenchmark("v1", alphas=[10.0], dtype="float64", n_bootstrap=200)
    assert bench.selected_subjects() == SUBJECTS
    result = nb.score("nsd-tiny", bench, device="cpu", store=tmp_path / "api.sqlite")
    stim = bench.stimuli()
    seen = set(np.concatenate([truth.trial_images(s, k) for s in SUBJECTS for k in SESSIONS]).tolist())
    assert stim.ids == [f"nsd-{i:05d}" for i in sorted(seen)]
    assert np.array_equal(stim.images[0], truth.images[sorted(seen)[0] - 1])
    acts = nb.load_model("nsd-tiny").activations(stim, ["0", "1"], device="cpu")
    assert np.allclose(acts["0"], _features(truth.images[np.array(sorted(seen)) - 1]), atol=1e-5)
    assert result.best_layer == "0" and result.normalized > 0.3
    per_subject_raw, per_subject_norm = [], []
    for subject in SUBJECTS:
        ref = reference(truth, subject, "v1", acts["0"], stim.ids, alpha=10.0)
        got = result.per_target[result.per_target["subject"] == subject].merge(ref, on=["voxel_i", "voxel_j",
                                                                                         "voxel_k"])
        assert len(got) == len(ref) == 10
        np.testing.assert_allclose(got["r"], got["r_ref"], atol=1e-5)  # responses are held in float32
        np.testing.assert_allclose(got["reliability"], got["ceiling_ref"], rtol=1e-12)
        raw, norm = _median_scores(ref)
        per_subject_raw.append(raw)
        per_subject_norm.append(norm)
    best = result.layers.set_index("layer").loc["0"]
    assert best["raw"] == pytest.approx(np.mean(per_subject_raw), abs=1e-5)
    assert best["normalized"] == pytest.approx(np.mean(per_subject_norm), abs=1e-5)
    assert result.ci_low <= result.raw <= result.ci_high
    assert result.provenance["sessions"] == {"subj01": [1, 2], "subj02": [1, 2]}
    assert "ncsnr" in result.ceiling_note


def test_cli_scores_and_stores(miniature, plugin, tmp_path):
    build(miniature)
    store = tmp_path / "cli.sqlite"
    code = main(["--plugin", str(plugin), "score", "--model", "nsd-tiny", "--benchmark", "nsd.hv4-encoding",
                 "--device", "cpu", "--store", str(store), "--quiet"])
    assert code == 0
    board = ResultStore(store).leaderboard()
    assert list(board["benchmark"]) == ["nsd.hv4-encoding"]
    api = nb.score("nsd-tiny", "nsd.hv4-encoding", device="cpu")
    assert float(board["raw"].iloc[0]) == pytest.approx(api.raw, abs=1e-6)
    assert set(api.per_target["subject"]) == set(SUBJECTS)


def test_data_files_and_subject_choice(miniature):
    build(miniature)
    bench = nb.load_benchmark("nsd.ppa-encoding")
    names = [name for _ds, name in bench.data_files]
    assert nsd.DESIGN in names and nsd.STIMULI in names
    assert "nsddata/ppdata/subj02/func1pt8mm/roi/floc-places.nii.gz" in names
    assert not any("floc-faces" in n for n in names)
    assert bench.data_status() == (True, "")
    one = nsd.NSDEncodingBenchmark("ppa", subjects=[2])
    assert one.selected_subjects() == ("subj02",)
    assert len(one.stimuli()) == N_SHARED + N_OWN


def test_ffa_merges_both_patches_and_reads_nifti_like_hdf5(miniature):
    truth = build(miniature)
    data = nsd.load_subject("subj01", "ffa")
    assert data.responses.shape == (N_SHARED + N_OWN, 3, 7) and data.is_test.sum() == N_SHARED
    assert np.isnan(data.responses).any()  # ragged repeats are NaN-padded
    hv4 = {s: nsd.load_subject(s, "hv4") for s in SUBJECTS}
    for subject, d in hv4.items():  # the HDF5 (subj01) and NIfTI (subj02) readers give the same numbers
        i, j, k = d.voxels.T
        first = truth.betas[subject][0][i, j, k].T / 300.0
        z = scipy.stats.zscore(first, axis=0, ddof=1)
        shown = truth.trial_images(subject, 1)
        img = f"nsd-{shown[0]:05d}"
        row = d.stimulus_ids.index(img)
        np.testing.assert_allclose(d.responses[row, 0], z[0], atol=1e-5)


def test_missing_subject_names_the_subjects_at_hand(miniature):
    build(miniature)
    with pytest.raises(DataUnavailableError, match=r"subj03.*subjects: \['subj01', 'subj02'\]"):
        nsd.NSDEncodingBenchmark("v1", subjects=["subj03"]).selected_subjects()
    (miniature.folder("nsd") / nsd.BETA_DIR.format(subject="subj02") / "betas_session02.nii.gz").unlink()
    bench = nsd.NSDEncodingBenchmark("v1", subjects=["subj02"])
    with pytest.raises(DataUnavailableError, match=r"subj02.*all local: \['subj01'\]"):
        bench.stimuli()
    assert nb.load_benchmark("nsd.v1-encoding").selected_subjects() == ("subj01",)  # default: the subjects at hand


def test_absent_roi_names_the_rois_present(miniature):
    build(miniature)
    with pytest.raises(InvalidInputError, match=r"subj02 has no voxels labelled \['FFA-1', 'FFA-2'\].*"
                                                 r"present for subj02: \['OFA', 'mTL-faces'\]"):
        nsd.load_subject("subj02", "ffa")


def test_beta_file_of_another_resolution_is_refused(miniature):
    build(miniature, beta_shape_subj01=(TRIALS, 5, 7, 7))
    with pytest.raises(InvalidInputError, match=r"shape \(40, 5, 7, 7\), expected \(trials, 5, 7, 6\)"):
        nsd.load_subject("subj01", "v1")


def test_design_of_another_release_is_refused(miniature):
    build(miniature, drop_design_key="sharedix")
    with pytest.raises(InvalidInputError, match=r"lacks \['sharedix'\].*masterordering"):
        nsd.load_design()


def test_images_missing_from_the_brick_are_named(miniature):
    truth = build(miniature, brick_images=40)
    bench = nsd.NSDEncodingBenchmark("v1")
    seen = np.concatenate([truth.trial_images(s, k) for s in SUBJECTS for k in SESSIONS])
    first_missing = f"nsd-{np.sort(seen[seen > 40])[0]:05d}"
    with pytest.raises(AlignmentError, match=rf"holds 40 images.*{first_missing}"):
        bench.stimuli()


def test_noise_ceiling_formula():
    # NSD manual: NC = 100 ncsnr^2 / (ncsnr^2 + (A/3 + B/2 + C/1) / (A + B + C)); here in r^2 units
    ncsnr = np.array([0.0, 0.5, 1.0, 2.0])
    reps = np.array([3] * 6 + [2] * 3 + [1])
    expected = ncsnr**2 / (ncsnr**2 + (6 / 3 + 3 / 2 + 1 / 1) / 10)
    np.testing.assert_allclose(nsd.noise_ceiling(ncsnr, reps), expected)
    assert nsd.noise_ceiling(np.array([1.0]), np.array([3, 3]))[0] == pytest.approx(0.75)


def test_per_target_results_stored_exported_and_mapped(miniature, plugin, tmp_path):
    """Every layer's per-voxel values go to the store's sidecar; `neurobench export` gives them back
    as CSV / Parquet equal to the in-memory result, and as NIfTI maps in the func1pt8mm volume with
    the ROI mask's affine, each voxel at its (i, j, k), plus glass-brain drawings."""
    build(miniature)
    store = tmp_path / "s.sqlite"
    bench = nsd.NSDEncodingBenchmark("v1", alphas=[10.0], n_bootstrap=20)
    result = nb.score("nsd-tiny", bench, device="cpu", store=store)
    targets = result.targets
    assert set(targets["layer"]) == {"0", "1"} and set(targets["subject"]) == set(SUBJECTS)
    assert {"r", "ceiling", "normalized", "alpha", "usable", "voxel_i", "voxel_j", "voxel_k"} <= set(targets)
    best = targets[targets["layer"] == result.best_layer].reset_index(drop=True)
    np.testing.assert_array_equal(best["r"], result.per_target["r"])  # the headline layer's per-target table
    np.testing.assert_array_equal(best["ceiling"], result.per_target["reliability"])

    side = list((tmp_path / "s.targets").iterdir())
    assert len(side) == 1 and side[0].suffix == ".parquet"
    assert main(["export", "--model", "nsd-tiny", "--benchmark", "nsd.v1-encoding", "--format", "csv",
                 "--out", str(tmp_path / "t.csv"), "--store", str(store)]) == 0
    back = pd.read_csv(tmp_path / "t.csv", dtype={"layer": str})
    np.testing.assert_allclose(back["r"], targets["r"], rtol=1e-12)
    assert list(back.columns) == list(targets.columns)
    nb.export_targets("nsd-tiny", "nsd.v1-encoding", format="parquet", layer="1", out=tmp_path / "t.parquet",
                      store=store)
    pq = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pq, targets[targets["layer"] == "1"].reset_index(drop=True))

    files = nb.export_targets("nsd-tiny", "nsd.v1-encoding", format="nifti", plot=True, out=tmp_path / "maps",
                              store=store)
    for subject in SUBJECTS:
        img = nib.load(tmp_path / "maps" / f"nsd-tiny_nsd.v1-encoding_{result.best_layer}_{subject}_r.nii.gz")
        mask = nib.load(miniature.folder("nsd") / nsd.ROI_MASK.format(subject=subject, family="prf-visualrois"))
        np.testing.assert_allclose(img.affine, mask.affine)
        assert img.shape == mask.shape == (X, Y, Z)
        vol = np.asarray(img.dataobj)
        rows = best[best["subject"] == subject]
        ijk = rows[["voxel_i", "voxel_j", "voxel_k"]].to_numpy()
        np.testing.assert_allclose(vol[tuple(ijk.T)], rows["r"].to_numpy(dtype=np.float32))
        assert np.isnan(vol).sum() == X * Y * Z - len(rows)
        labels = np.asarray(mask.dataobj)[tuple(ijk.T)]
        assert set(labels.tolist()) <= {1, 2}  # V1v, V1d: the voxels sit where the mask puts V1
    assert sum(p.suffix == ".png" for p in files) == 4 and sum(p.suffix == ".svg" for p in files) == 4
    assert all(p.stat().st_size > 1000 for p in files if p.suffix in (".png", ".svg"))


def test_sidecar_is_atomic_with_the_rows(miniature, plugin, tmp_path, monkeypatch):
    """A write that fails after the sidecar is in place leaves neither rows nor file; a file left
    by a crash before the commit is swept when the store is next opened; a changed file is refused."""
    import sqlite3

    build(miniature)
    store = ResultStore(tmp_path / "s.sqlite")
    result = nb.score("nsd-tiny", nsd.NSDEncodingBenchmark("v1", alphas=[10.0], n_bootstrap=0), device="cpu")
    real = ResultStore._write_targets

    def write_then_fail(self, res, result_id):
        real(self, res, result_id)
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(ResultStore, "_write_targets", write_then_fail)
    with pytest.raises(nb.errors.StoreError, match="simulated"):  # the sqlite error, typed
        store.add(result)
    monkeypatch.undo()
    assert store.rows().empty and not any(store.targets_dir.iterdir())
    (store.targets_dir / "crashed.parquet").write_bytes(b"left by a crash")
    (store.targets_dir / ".tmp-x.parquet").write_bytes(b"half")
    store.add(result)
    ResultStore(store.path)
    assert [p.name for p in store.targets_dir.iterdir()] == [f"{store.rows()['result_id'][0]}.parquet"]
    sidecar = next(store.targets_dir.iterdir())
    sidecar.write_bytes(sidecar.read_bytes() + b"x")
    with pytest.raises(nb.errors.ChecksumMismatchError, match="changed after it was stored"):
        store.targets("nsd-tiny", "nsd.v1-encoding")
