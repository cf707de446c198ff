"""THINGS-fMRI on a miniature release in the true table format (betas_csv.zip with pandas fixed-format
HDF5, voxel and stimulus CSVs) and a miniature THINGS image archive: CLI and Python API end to end,
numbers checked against scikit-learn Ridge and rsatoolbox, and the bad-input errors."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import neurobench as nb
from neurobench.errors import AlignmentError, DataFormatError, NeurobenchError, StimulusError
from tests.miniature import run_score

SUBJECTS = ("01", "02", "03")
CONCEPTS = ("aardvark", "air_conditioner", "banana", "dog", "mango", "zebra")
TEST_CONCEPTS = ("candelabra", "kazoo", "otter", "quill", "teapot", "umbrella", "violin", "walrus")
N_REPS, N_VOX, SIZE = 4, 30, 16
ROI_SLICES = {"V1": slice(0, 8), "V2": slice(6, 12), "V3": slice(12, 16), "hV4": slice(16, 20),
              "lLOC": slice(20, 23), "rLOC": slice(23, 26), "lFFA": slice(26, 28), "rFFA": slice(28, 30),
              "lPPA": slice(0, 3), "rPPA": slice(3, 5), "lEBA": slice(5, 7), "rEBA": slice(7, 9), "IT": slice(20, 30)}
VOXEL_COLUMNS = ["voxel_id", "subject_id", "voxel_x", "voxel_y", "voxel_z", "nc_singletrial", "nc_testset",
                 "splithalf_uncorrected", "splithalf_corrected", "prf-eccentricity", "prf-polarangle",
                 "prf-rsquared", "prf-size", "V1", "V2", "V3", "hV4", "VO1", "VO2", "LO1 (prf)", "LO2 (prf)", "TO1",
                 "TO2", "V3b", "V3a", "lEBA", "rEBA", "lFFA", "rFFA", "lOFA", "rOFA", "lSTS", "rSTS", "lPPA", "rPPA",
                 "lRSC", "rRSC", "lTOS", "rTOS", "lLOC", "rLOC", "IT", "glasser-V1", "glasser-MST"]


# ----------------------------------------------------------------------------- the miniature release

def _attrs(node, **attrs):
    """PyTables-style attributes: str -> fixed-length UTF-8 scalar, b"N." (a pickled None, as
    PyTables writes a missing index name) -> ASCII, TITLE -> empty string, others as given."""
    node.attrs["TITLE"] = h5py.Empty("S1")
    for key, value in attrs.items():
        if isinstance(value, str):
            node.attrs.create(key, np.bytes_(value.encode()), dtype=h5py.string_dtype("utf-8", len(value)))
        else:
            node.attrs[key] = value


def _pickled_index(group, key, labels):
    """How pandas' fixed format stores an object index of mixed/int labels: a PyTables VLArray of
    pickled objects (the release's column labels 'voxel_id', 0, 1, ...)."""
    ds = group.create_dataset(key, (1,), dtype=h5py.vlen_dtype(np.uint8))
    ds[0] = np.frombuffer(pickle.dumps(np.asarray(labels, dtype=object), protocol=5), dtype=np.uint8)
    _attrs(ds, CLASS="VLARRAY", PSEUDOATOM="object", VERSION="1.4", kind="object", name=np.bytes_(b"N."),
           transposed=np.uint8(1))


def _array(group, key, data, **attrs):
    ds = group.create_dataset(key, data=data)
    _attrs(ds, CLASS="ARRAY", FLAVOR="numpy", VERSION="2.4", transposed=np.uint8(1), **attrs)


def write_response_data(path: Path, betas: np.ndarray):
    """`pd.DataFrame(betas); insert(0, 'voxel_id', ...); to_hdf(path, key='ResponseData')`, byte-level layout
    of pandas' fixed format (PyTables), written with h5py because PyTables is not a test dependency."""
    n_vox, n_trials = betas.shape
    with h5py.File(path, "w") as f:
        _attrs(f, CLASS="GROUP", PYTABLES_FORMAT_VERSION="2.1", VERSION="1.0")
        g = f.create_group("ResponseData")
        _attrs(g, CLASS="GROUP", VERSION="1.0", axis0_variety="regular", axis1_variety="regular",
               block0_items_variety="regular", block1_items_variety="regular", encoding="UTF-8", errors="strict",
               nblocks=np.int64(2), ndim=np.int64(2), pandas_type="frame")
        _pickled_index(g, "axis0", ["voxel_id", *range(n_trials)])
        _array(g, "axis1", np.arange(n_vox, dtype=np.int64), kind="integer", name=np.bytes_(b"N."))
        _pickled_index(g, "block0_items", list(range(n_trials)))
        _array(g, "block0_values", betas.astype(np.float32))
        _array(g, "block1_items", np.array([b"voxel_id"], dtype="S8"), kind="string", name=np.bytes_(b"N."),
               nan_rep=h5py.Empty("S1"))
        _array(g, "block1_values", np.arange(n_vox, dtype=np.int64)[:, None])


def _jpeg(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def features_of(jpeg: bytes) -> np.ndarray:
    """Ground truth: the `synthetic-oracle` model's two layers, computed here in float64 numpy."""
    from neurobench.benchmarks.synthetic import N_FEATURES, _directions

    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float64).reshape(-1) / 255.0
    return (pixels - 0.5) @ _directions()[:, :N_FEATURES] * np.sqrt(12.0)


class Release:
    """In-memory ground truth of one miniature THINGS-fMRI release, plus its files on disk."""

    def __init__(self, miniature, seed=0, subjects=SUBJECTS, drop_roi=None, extra_trial=False, drop_image=None):
        rng = np.random.default_rng(seed)
        self.train = [f"{c}_{k:02d}{'bsn'[k % 3]}" for c in CONCEPTS for k in range(1, 5)]
        self.test = [f"{c}_{13 + i % 2}s" for i, c in enumerate(TEST_CONCEPTS)]
        names = self.train + self.test + ["zebra_12s", "kazoo_01b"]  # two images no subject saw
        self.jpegs = {n: _jpeg(rng) for n in names}
        self.features = {n: features_of(b) for n, b in self.jpegs.items()}
        self.truth: dict[str, dict] = {}
        img_dir = miniature.folder("things_images")
        with zipfile.ZipFile(img_dir / "images_THINGS.zip", "w") as zf:
            for n, data in self.jpegs.items():
                if n != drop_image:
                    zf.writestr(f"object_images/{n.rsplit('_', 1)[0]}/{n}.jpg", data)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for s in subjects:
                files = self._subject(s, rng, drop_roi, extra_trial)
                for name, data in files.items():
                    zf.writestr(f"betas_csv/{name}", data)
            zf.writestr("__MACOSX/betas_csv/._sub-01_ResponseData.h5", b"\0")
        (miniature.folder("things_fmri") / "betas_csv.zip").write_bytes(buf.getvalue())
        miniature.publish("things_images")
        miniature.publish("things_fmri")

    def _subject(self, s, rng, drop_roi, extra_trial):
        weights = rng.standard_normal((8, N_VOX)) / np.sqrt(8)
        signal = {n: self.features[n] @ weights for n in self.train + self.test}
        noise_sd = rng.uniform(0.5, 1.5, N_VOX)
        trials = [(n, "train", 1 + i % N_REPS) for i, n in enumerate(self.train)]
        trials += [(n, "test", 1 + r) for r in range(N_REPS) for n in self.test]
        order = rng.permutation(len(trials))
        trials = [trials[i] for i in order]
        betas = np.stack([signal[n] + noise_sd * rng.standard_normal(N_VOX) for n, _t, _s in trials], axis=1)
        betas = betas.astype(np.float32)
        stim = pd.DataFrame({"trial_type": [t for _n, t, _s in trials], "session": [x for _n, _t, x in trials],
                             "run": [1 + i % 10 for i in range(len(trials))], "subject_id": int(s),
                             "trial_id": np.arange(len(trials)), "stimulus": [f"{n}.jpg" for n, _t, _s in trials],
                             "concept": [n.rsplit("_", 1)[0] for n, _t, _s in trials]})
        sig_var = np.var(np.stack([signal[n] for n in self.test]), axis=0, ddof=1)
        nc = 100 * sig_var / (sig_var + noise_sd**2 / N_REPS)
        nc[3] = 0.0  # a voxel the release gives no ceiling (NSD-style 0)
        vox = pd.DataFrame(0, index=np.arange(N_VOX), columns=VOXEL_COLUMNS)
        vox["voxel_id"], vox["subject_id"] = np.arange(N_VOX), int(s)
        vox[["voxel_x", "voxel_y", "voxel_z"]] = rng.integers(0, 80, (N_VOX, 3))
        vox["nc_testset"], vox["nc_singletrial"] = nc, 100 * sig_var / (sig_var + noise_sd**2)
        vox[["splithalf_uncorrected", "splithalf_corrected", "prf-eccentricity"]] = rng.random((N_VOX, 3))
        for col, sl in ROI_SLICES.items():
            vox.loc[np.arange(N_VOX)[sl], col] = 1
        if drop_roi:
            vox = vox.drop(columns=[drop_roi])
        if extra_trial:
            betas = np.hstack([betas, betas[:, :1]])
        self.truth[s] = {"betas": betas, "stim": stim, "nc": nc}
        h5 = io.BytesIO()
        write_response_data(h5, betas)
        return {f"sub-{s}_ResponseData.h5": h5.getvalue(), f"sub-{s}_VoxelMetadata.csv": vox.to_csv(index=False),
                f"sub-{s}_StimulusMetadata.csv": stim.to_csv(index=False)}

    # independent reference computations ------------------------------------------------------------

    def roi_mask(self, cols):
        mask = np.zeros(N_VOX, bool)
        for c in cols:
            mask[ROI_SLICES[c]] = True
        return mask

    def image_means(self, s, cols):
        t = self.truth[s]
        betas = t["betas"][self.roi_mask(cols)]
        names = [n[:-4] for n in t["stim"]["stimulus"]]
        return {n: betas[:, [i for i, m in enumerate(names) if m == n]].astype(np.float64).mean(1)
                for n in self.train + self.test}

    def encoding_reference(self, cols, alpha, layer_dims):
        """Per layer: mean over subjects of (median r, median sign(r) r^2 / (nc/100)), sklearn Ridge."""
        from sklearn.linear_model import Ridge

        out = {}
        for layer, dims in layer_dims.items():
            raws, norms = [], []
            for s in SUBJECTS:
                means = self.image_means(s, cols)
                xtr = np.stack([self.features[n][dims] for n in self.train])
                xte = np.stack([self.features[n][dims] for n in self.test])
                ytr = np.stack([means[n] for n in self.train])
                yte = np.stack([means[n] for n in self.test])
                pred = Ridge(alpha=alpha).fit(xtr, ytr).predict(xte)
                r = np.array([np.corrcoef(pred[:, v], yte[:, v])[0, 1] for v in range(yte.shape[1])])
                nc = self.truth[s]["nc"][self.roi_mask(cols)] / 100
                ok = nc > 0
                raws.append(np.median(r[ok]))
                norms.append(np.median(np.sign(r[ok]) * r[ok] ** 2 / nc[ok]))
            out[layer] = (np.mean(raws), np.mean(norms))
        return out

    def rdms(self, cols):
        test = sorted(self.test)
        return np.stack([1 - np.corrcoef(np.stack([self.image_means(s, cols)[n] for n in test]))
                         for s in SUBJECTS])


LAYERS = {"features": slice(0, 8), "partial": slice(0, 4)}


def _bench(name, **attrs):
    bench = nb.load_benchmark(name)
    for k, v in attrs.items():
        setattr(bench, k, v)
    return bench


# ----------------------------------------------------------------------------- tests

def test_response_file_layout_is_what_pandas_writes(tmp_path):
    """The hand-written HDF5 reads back through pandas (PyTables) as the release's frame, when available."""
    pytest.importorskip("tables")
    betas = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_response_data(tmp_path / "r.h5", betas)
    frame = pd.read_hdf(tmp_path / "r.h5")
    assert list(frame.columns) == ["voxel_id", 0, 1, 2, 3]
    np.testing.assert_array_equal(frame[[0, 1, 2, 3]].to_numpy(), betas)


def test_loader_reads_native_layout(miniature):
    from neurobench.benchmarks import things_fmri as tf

    rel = Release(miniature)
    data = tf.load_subject_roi("02", "LOC")
    assert data.stimulus_ids == sorted(rel.train + rel.test) and data.test_ids == sorted(rel.test)
    assert data.responses.shape == (len(rel.train) + len(rel.test), 1, 6)
    np.testing.assert_allclose(data.noise_ceiling, rel.truth["02"]["nc"][20:26] / 100)
    means = rel.image_means("02", ("lLOC", "rLOC"))
    for k, n in enumerate(data.stimulus_ids):
        np.testing.assert_allclose(data.responses[k, 0], means[n], rtol=1e-6)
    ragged = tf.load_subject_roi("02", "V1", repeats="keep")
    counts = (~np.isnan(ragged.responses[:, :, 0])).sum(1)
    assert sorted(set(counts)) == [1, N_REPS]
    stim = tf.all_stimuli()
    assert stim.labels.loc["air_conditioner_01s", "concept"] == "air_conditioner"
    assert (stim.labels["split"] == "test").sum() == len(rel.test)
    assert np.asarray(stim.images[0]).shape == (SIZE, SIZE, 3)
    assert "zebra_12s" not in stim.ids


def test_encoding_matches_sklearn(miniature):
    rel = Release(miniature)
    bench = _bench("things-fmri.loc-encoding", alphas=(3.0,), reduction=None, dtype="float64", n_bootstrap=50)
    model = nb.load_model("synthetic-oracle")
    res = bench.score(model, device="cpu")
    expected = rel.encoding_reference(("lLOC", "rLOC"), 3.0, LAYERS)
    table = res.layers.set_index("layer")
    for layer, (raw, norm) in expected.items():
        assert table.loc[layer, "raw"] == pytest.approx(raw, abs=1e-6)
        assert table.loc[layer, "normalized"] == pytest.approx(norm, abs=1e-6)
    assert res.raw == pytest.approx(table.loc[res.best_layer, "raw"])
    assert res.ci_low <= res.raw <= res.ci_high
    assert set(res.per_target["subject"]) == {"sub-01", "sub-02", "sub-03"}
    assert res.provenance["n_voxels"] == {"sub-01": 6, "sub-02": 6, "sub-03": 6}
    assert "nc_testset" in res.ceiling_note


@pytest.mark.slow
def test_cli_and_api_agree_with_defaults(miniature, tmp_path):
    """The benchmark with its defaults, through the Python API and the CLI, gives the same numbers."""
    Release(miniature)
    api = nb.score("synthetic-oracle", "things-fmri.loc-encoding", device="cpu", store=tmp_path / "api.sqlite")
    store = tmp_path / "cli.sqlite"
    proc = run_score("synthetic-oracle", "things-fmri.loc-encoding", store)
    assert proc.returncode == 0, proc.stderr
    board = nb.ResultStore(store).leaderboard()
    row = board[board["benchmark"] == "things-fmri.loc-encoding"].iloc[0]
    assert float(row["raw"]) == pytest.approx(api.raw, abs=1e-9)
    assert api.normalized > 0.3  # the oracle carries the generating features


def test_data_rdms_match_reference(miniature):
    from neurobench.benchmarks import things_fmri as tf

    rel = Release(miniature)
    ids, rdms, note = tf.subject_rdms("FFA")
    assert ids == sorted(rel.test) and note == ""
    np.testing.assert_allclose(rdms, rel.rdms(("lFFA", "rFFA")), atol=1e-9)


@pytest.mark.slow
def test_rsa_matches_rsatoolbox(miniature):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs, compare

    rel = Release(miniature)
    bench = _bench("things-fmri.v1-rsa", n_bootstrap=20)
    res = bench.score(nb.load_model("synthetic-oracle"), device="cpu")
    data = rel.rdms(("V1",))
    test = sorted(rel.test)
    assert bench.stimuli().ids == test
    lo, hi = boot_noise_ceiling(RDMs(data), method="tau-a")
    table = res.layers.set_index("layer")
    for layer, dims in LAYERS.items():
        feats = np.stack([rel.features[n][dims] for n in test])
        model = RDMs((1 - np.corrcoef(feats))[None])
        expected = float(np.mean(compare(model, RDMs(data), method="tau-a")))
        assert table.loc[layer, "raw"] == pytest.approx(expected, abs=1e-9)
        assert table.loc[layer, "ceiling"] == pytest.approx(lo, abs=1e-9)
        assert table.loc[layer, "ceiling_upper"] == pytest.approx(hi, abs=1e-9)


def test_missing_subject_names_the_ones_there(miniature):
    Release(miniature, subjects=("01", "02"))
    with pytest.raises(NeurobenchError, match=r"subject '03'.*subjects there: \['01', '02'\]"):
        nb.load_benchmark("things-fmri.v1-rsa").stimuli()


def test_missing_roi_column_lists_roi_columns(miniature):
    Release(miniature, drop_roi="hV4")
    from neurobench.benchmarks import things_fmri as tf

    with pytest.raises(NeurobenchError, match=r"no ROI column \['hV4'\].*'V3'.*'lLOC'"):
        tf.load_subject_roi("01", "hV4")


def test_response_columns_must_match_stimulus_metadata(miniature):
    Release(miniature, extra_trial=True)
    from neurobench.benchmarks import things_fmri as tf

    with pytest.raises(AlignmentError, match=r"\d+ trial columns but sub-01_StimulusMetadata.csv lists \d+ trials"):
        tf.load_subject_roi("01", "V1")


def test_image_missing_from_archive(miniature):
    rel = Release(miniature, drop_image="dog_03b")
    assert "dog_03b" in rel.train
    with pytest.raises(StimulusError, match=r"1 of \d+ THINGS images are not in .*'dog_03b'"):
        nb.load_benchmark("things-fmri.v1-encoding").stimuli()


def test_another_hdf5_layout_is_refused(miniature, tmp_path):
    from neurobench.benchmarks import things_fmri as tf

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["betas"] = np.zeros((3, 4))
    with pytest.raises(DataFormatError, match="pandas frame"):
        tf.response_layout(path)


def test_benchmarks_registered_with_their_files():
    for roi in ("v1", "v2", "v3", "hv4", "loc", "ffa", "ppa", "eba", "it"):
        for kind in ("encoding", "rsa"):
            bench = nb.load_benchmark(f"things-fmri.{roi}-{kind}")
            assert bench.data_files == (("things_fmri", "betas_csv.zip"), ("things_images", "images_THINGS.zip"))
    assert nb.load_benchmark("things-fmri.hv4-rsa").comparator == "tau_a"


def test_per_target_results_export_and_voxel_grid(miniature, tmp_path):
    """Store -> export -> read back: every layer's per-voxel values equal the in-memory result; the
    NIfTI has each voxel at the release's voxel_x/y/z on the 2 mm grid (the table release has no
    header, so no scanner origin: the map says so in its provenance)."""
    import nibabel as nib

    Release(miniature)
    store = tmp_path / "s.sqlite"
    bench = _bench("things-fmri.loc-encoding", alphas=(3.0,), reduction=None, n_bootstrap=0)
    res = nb.score("synthetic-oracle", bench, device="cpu", store=store)
    assert set(res.targets["layer"]) == set(res.layers["layer"]) and len(res.targets) == 3 * 6 * len(res.layers)
    out = nb.export_targets("synthetic-oracle", "things-fmri.loc-encoding", format="parquet",
                            out=tmp_path / "t.parquet", store=store)[0]
    pd.testing.assert_frame_equal(pd.read_parquet(out), res.targets)
    stored = nb.ResultStore(store).targets("synthetic-oracle", "things-fmri.loc-encoding")
    assert "no NIfTI header" in stored.space["sub-01"]["source"]
    nb.export_targets("synthetic-oracle", "things-fmri.loc-encoding", format="nifti", out=tmp_path / "maps",
                      layer=res.best_layer, store=store)
    for s in ("01", "02", "03"):
        vox = pd.read_csv(io.StringIO(rel_csv(miniature, s)))
        img = nib.load(tmp_path / "maps" / f"synthetic-oracle_things-fmri.loc-encoding_{res.best_layer}_sub-{s}"
                                             "_normalized.nii.gz")
        np.testing.assert_allclose(img.affine, np.diag([2.0, 2.0, 2.0, 1.0]))
        rows = res.targets[(res.targets["subject"] == f"sub-{s}") & (res.targets["layer"] == res.best_layer)]
        xyz = vox.set_index("voxel_id").loc[rows["voxel_id"], ["voxel_x", "voxel_y", "voxel_z"]].to_numpy()
        np.testing.assert_allclose(np.asarray(img.dataobj)[tuple(xyz.T)], rows["normalized"].to_numpy(np.float32))
    with pytest.raises(nb.errors.DataUnavailableError, match="no per-target values"):
        nb.score("synthetic-oracle", "things-fmri.loc-rsa", device="cpu", store=store)
        nb.export_targets("synthetic-oracle", "things-fmri.loc-rsa", out=tmp_path / "x.csv", store=store)


def rel_csv(miniature, s):
    with zipfile.ZipFile(miniature.folder("things_fmri") / "betas_csv.zip") as zf:
        name = next(n for n in zf.namelist() if n.endswith(f"sub-{s}_VoxelMetadata.csv"))
        return zf.read(name).decode()
