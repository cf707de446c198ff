"""Majaj-Hong 2015 on a miniature of the public BrainIO release: the netCDF assembly written with
xarray in BrainIO's layout (one DataArray `dicarlo.MajajHong2015.public`, dims neuroid x
presentation x time_bin, flattened coords), the stimulus CSV and a zip of 16x16 PNGs; scored through
the CLI and the Python API and checked against scikit-learn PLSRegression / Ridge on the same splits."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import xarray as xr
from PIL import Image

import neurobench as nb
from neurobench.benchmarks import majajhong2015 as mh
from neurobench.cli import main
from neurobench.errors import AlignmentError, InvalidInputError
from neurobench.registry import models

pytest.importorskip("h5netcdf")
sklearn = pytest.importorskip("sklearn")
from sklearn.cross_decomposition import PLSRegression  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit  # noqa: E402

OBJECTS = {"bear": "Animals", "dog": "Animals", "car": "Cars", "truck": "Cars"}
N_PER_OBJECT, SIZE = 15, 16
REGION_UNITS = {"IT": 6, "V4": 4}

PLUGIN = '''
import torch, neurobench as nb

@nb.register_model("majaj-pixels", family="custom")
def majaj_pixels(seed: int = 0):
    """Pixels and a fixed random projection of them (a test model)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 40))
    return nb.TorchAdapter(net, layers=["0", "1"], preprocess=nb.ImagePreprocess(resize=16, crop=16), trained=False)
'''


def _image_id(i: int) -> str:
    return hashlib.sha1(f"hvm-{i}".encode()).hexdigest()


def write_miniature(folder, *, regions=REGION_UNITS, drop_csv_rows=0, drop_coord=None, seed=0) -> dict:
    """Write the three release files under `folder`; return the generator's ground truth."""
    rng = np.random.default_rng(seed)
    objects = [o for o in OBJECTS for _ in range(N_PER_OBJECT)]
    n = len(objects)
    ids = [_image_id(i) for i in range(n)]
    pixels = rng.integers(0, 256, size=(n, SIZE, SIZE), dtype=np.uint8)
    files = [f"{o}_rx+00.000_{i}_256x256.png" for i, o in zip(ids, objects)]
    with zipfile.ZipFile(folder / mh.ZIP_FILE, "w") as zf:  # images at the archive root, as BrainIO packs them
        for name, img in zip(files, pixels):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
    table = pd.DataFrame({"id": range(n), "image_id": ids, "object_name": objects,
                          "category_name": [OBJECTS[o] for o in objects], "variation": [3] * n,
                          "background_id": rng.integers(0, 100, n), "s": rng.random(n),
                          "image_file_name": files, "filename": files})
    table.iloc[drop_csv_rows:].to_csv(folder / mh.CSV_FILE, index=False)
    # responses: a linear map of the (grayscale) pixels, plus trial noise; ragged repetitions
    feats = pixels.reshape(n, -1).astype(np.float64) / 255.0
    units = [(r, k) for r, count in regions.items() for k in range(count)]
    signal = feats @ rng.normal(size=(feats.shape[1], len(units))) * 0.3
    n_reps = rng.choice([4, 6], size=n)
    rows = [(i, rep) for i in range(n) for rep in range(n_reps[i])]
    rng.shuffle(rows)
    data = np.stack([signal[i] + rng.normal(size=len(units)) * 1.0 for i, _ in rows]).astype(np.float32)
    pres = {"image_id": [ids[i] for i, _ in rows], "repetition": [rep for _, rep in rows],
            "object_name": [objects[i] for i, _ in rows], "variation": [3] * len(rows)}
    neur = {"neuroid_id": [f"{'Tito' if k % 2 else 'Chabo'}_L_{r}_{k}" for r, k in units],
            "region": [r for r, _ in units], "animal": ["Tito" if k % 2 else "Chabo" for _, k in units],
            "arr": ["M" for _ in units], "col": [k for _, k in units], "row": [0 for _ in units]}
    coords = {k: ("presentation", np.asarray(v)) for k, v in pres.items() if k != drop_coord}
    coords.update({k: ("neuroid", np.asarray(v)) for k, v in neur.items() if k != drop_coord})
    coords.update({"time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])})
    da = xr.DataArray(data.T[:, :, None], dims=("neuroid", "presentation", "time_bin"), coords=coords,
                      name=mh.VARIABLE, attrs={"stimulus_set_identifier": mh.STIMULUS_SET})
    da.to_dataset().to_netcdf(folder / mh.ASSEMBLY_FILE, engine="h5netcdf")
    return {"ids": ids, "objects": objects, "rows": rows, "data": data, "units": units, "pixels": pixels}


@pytest.fixture(autouse=True)
def one_thread():
    """The miniature's matrices are tiny: one torch thread avoids thread hand-off costs on busy machines."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def published(miniature):
    truth = write_miniature(miniature.folder(mh.DATASET))
    miniature.publish(mh.DATASET)
    return truth


@pytest.fixture
def plugin(tmp_path):
    """The tiny model, registered here under the module name the CLI's --plugin gives the same file."""
    path = tmp_path / "majaj_plugin.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location(f"neurobench_user_plugin_{path.stem}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    yield path
    models.remove("majaj-pixels")


# ---------------------------------------------------------------------------------------------
# independent reference computations (pandas / scikit-learn / scipy on the generator's truth)


def _long(truth, region) -> pd.DataFrame:
    cols = [j for j, (r, _k) in enumerate(truth["units"]) if r == region]
    frame = pd.DataFrame(truth["data"][:, cols].astype(np.float64), columns=[f"u{j}" for j in cols])
    frame["image_id"] = [truth["ids"][i] for i, _ in truth["rows"]]
    frame["repetition"] = [rep for _, rep in truth["rows"]]
    return frame


def reference_ceiling(truth, region) -> tuple[float, np.ndarray]:
    frame = _long(truth, region)
    units = [c for c in frame if c.startswith("u")]
    reps = np.unique(frame["repetition"])
    per_split = []
    for a, b in ShuffleSplit(n_splits=10, train_size=0.5, random_state=1).split(reps):
        ha = frame[frame["repetition"].isin(reps[a])].groupby("image_id")[units].mean()
        hb = frame[frame["repetition"].isin(reps[b])].groupby("image_id")[units].mean()
        r = np.array([scipy.stats.pearsonr(ha[u], hb.loc[ha.index, u])[0] for u in units])
        per_split.append(2 * r / (1 + r))
    per_split = np.array(per_split)
    return float(np.median(per_split, axis=1).mean()), per_split.mean(0)


def reference_means(truth, region) -> tuple[list[str], np.ndarray, np.ndarray]:
    frame = _long(truth, region)
    mean = frame.groupby("image_id")[[c for c in frame if c.startswith("u")]].mean().sort_index()
    objects = dict(zip(truth["ids"], truth["objects"]))
    return list(mean.index), mean.to_numpy(), np.array([objects[i] for i in mean.index])


def reference_pls(X, Y, labels, tol=1e-6, per_neuroid=False):
    """Brain-Score's raw score (median over neuroids of test r, mean over splits); with
    `per_neuroid`, also each neuroid's test r averaged over the splits."""
    per_split = []
    for train, test in StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(X, labels):
        pls = PLSRegression(n_components=25, scale=False, tol=tol, max_iter=10000).fit(X[train], Y[train])
        pred = pls.predict(X[test])
        per_split.append([scipy.stats.pearsonr(pred[:, j], Y[test, j])[0] for j in range(Y.shape[1])])
    raw = float(np.mean(np.median(per_split, axis=1)))
    return (raw, np.mean(per_split, axis=0)) if per_neuroid else raw


def _acts(bench, layers=("0", "1")):
    adapter = nb.load_model("majaj-pixels")
    return adapter.activations(bench.stimuli(), list(layers), device=torch.device("cpu"), cache=False)


# ---------------------------------------------------------------------------------------------


def test_loader_reads_the_release_layout(published):
    rec = mh.load_recording("IT")
    ids, mean, _labels = reference_means(published, "IT")
    assert rec.stimulus_ids == ids and rec.responses.shape == (60, 6, 6)
    np.testing.assert_allclose(rec.mean, mean, rtol=1e-6)
    assert np.isnan(rec.responses).any()  # ragged repetitions stay NaN
    stim = mh.load_stimuli()
    assert stim.ids == sorted(published["ids"]) and stim.labels["object_name"].nunique() == 4
    i = published["ids"].index(stim.ids[0])
    assert np.array_equal(np.asarray(Image.open(stim.images[0])), published["pixels"][i])


def test_pls_matches_sklearn_and_brainscore_ceiling(published, plugin):
    bench = nb.load_benchmark("majajhong2015.it-pls")
    bench.dtype, bench.n_bootstrap = "float64", 200
    acts = _acts(bench)
    res = bench.score_activations(acts, seed=0, device=torch.device("cpu"))
    _ids, Y, labels = reference_means(published, "IT")
    ceiling, reliability = reference_ceiling(published, "IT")
    for layer in ("0", "1"):
        row = res.layers.set_index("layer").loc[layer]
        expected, r = reference_pls(np.asarray(acts[layer], dtype=np.float64), Y, labels, tol=1e-14, per_neuroid=True)
        assert row["raw"] == pytest.approx(expected, abs=1e-7)
        assert row["ceiling"] == pytest.approx(ceiling, abs=1e-10)
        # Brain-Score's `explained_variance`: (raw / ceiling)^2 of the aggregates, no sign kept
        assert row["brainscore_explained_variance"] == pytest.approx((expected / ceiling) ** 2, abs=1e-6)
        # neurobench's convention: per neuroid sign(r) r^2 / reliability, median over neuroids
        ok = reliability > 0
        assert row["normalized"] == pytest.approx(np.median((np.sign(r) * r**2 / reliability)[ok]), abs=1e-6)
        assert row["ci_low"] <= row["raw"] <= row["ci_high"]
        if layer == "1":  # scikit-learn's default NIPALS tolerance moves the score only slightly
            assert row["raw"] == pytest.approx(reference_pls(np.asarray(acts[layer], np.float64), Y, labels), abs=1e-3)
    assert res.best_layer in ("0", "1") and res.provenance["splits"]["kind"] == "stratified-shuffle"
    assert res.normalization == "explainable_variance_fraction" and res.interval == "stimuli"
    assert res.other_normalizations["brainscore_explained_variance"] == pytest.approx(
        res.layers.set_index("layer").loc[res.best_layer, "brainscore_explained_variance"])
    assert len(res.per_target) == 6 and res.bootstrap[res.best_layer]["raw"].shape == (200,)


def test_cli_and_api(published, plugin, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    code = main(["--plugin", str(plugin), "score", "--model", "majaj-pixels", "--benchmark",
                 "majajhong2015.v4-pls", "majajhong2015.v4-encoding", "--store", str(store), "--device", "cpu",
                 "--quiet"])
    assert code == 0
    capsys.readouterr()
    res = nb.score("majaj-pixels", "majajhong2015.v4-pls", device="cpu", store=store)
    _ids, Y, labels = reference_means(published, "V4")
    ceiling, _ = reference_ceiling(published, "V4")
    acts = _acts(nb.load_benchmark("majajhong2015.v4-pls"), [res.best_layer])
    expected = reference_pls(np.asarray(acts[res.best_layer], np.float64), Y, labels, tol=1e-14)
    assert res.raw == pytest.approx(expected, abs=2e-4)  # float32 on the default path
    assert res.ceiling == pytest.approx(ceiling, abs=1e-6)
    assert res.provenance["data_hashes"] and len(nb.ResultStore(store).leaderboard()) == 2
    board = nb.ResultStore(store).leaderboard().set_index("benchmark")
    assert board.loc["majajhong2015.v4-pls", "explainable_variance_fraction"] == pytest.approx(res.normalized)
    assert board.loc["majajhong2015.v4-pls", "brainscore_explained_variance"] == pytest.approx(
        (res.raw / res.ceiling) ** 2)
    assert board.loc["majajhong2015.v4-encoding", "normalization"] == "explainable_variance_fraction"


def test_encoding_matches_sklearn_ridge(published, plugin):
    bench = nb.load_benchmark("majajhong2015.it-encoding")
    bench.alphas, bench.dtype, bench.n_bootstrap = (10.0,), "float64", 100
    acts = _acts(bench, ["1"])
    res = bench.score_activations(acts, seed=0, device=torch.device("cpu"))
    _ids, Y, labels = reference_means(published, "IT")
    _, reliability = reference_ceiling(published, "IT")
    X = np.asarray(acts["1"], dtype=np.float64)
    pred, fold_of = np.zeros_like(Y), np.zeros(len(Y), dtype=int)
    for k, (train, test) in enumerate(StratifiedKFold(10, shuffle=True, random_state=1).split(X, labels)):
        pred[test] = Ridge(alpha=10.0).fit(X[train], Y[train]).predict(X[test])
        fold_of[test] = k
    centred = lambda a: a - pd.DataFrame(a).groupby(fold_of).transform("mean").to_numpy()  # noqa: E731
    r = np.array([scipy.stats.pearsonr(centred(pred)[:, j], centred(Y)[:, j])[0] for j in range(Y.shape[1])])
    np.testing.assert_allclose(res.per_target["reliability"], reliability, atol=1e-10)
    np.testing.assert_allclose(res.per_target["r"], r, atol=1e-6)
    ok = reliability > 0
    assert res.normalized == pytest.approx(np.median((np.sign(r) * r**2 / reliability)[ok]), abs=1e-6)
    assert list(res.per_target["neuroid_id"])[:2] == ["Chabo_L_IT_0", "Tito_L_IT_1"]


def test_missing_region_names_the_regions(miniature):
    write_miniature(miniature.folder(mh.DATASET), regions={"IT": 3})
    miniature.publish(mh.DATASET)
    with pytest.raises(InvalidInputError, match=r"region 'V4'.*\['IT'\]"):
        mh.load_recording("V4")


def test_assembly_images_missing_from_the_csv(miniature):
    truth = write_miniature(miniature.folder(mh.DATASET), drop_csv_rows=2)
    miniature.publish(mh.DATASET)
    bench = nb.load_benchmark("majajhong2015.it-pls")
    with pytest.raises(AlignmentError, match="not in the stimulus set") as info:
        bench.recording()
    assert truth["ids"][0] in str(info.value) or truth["ids"][1] in str(info.value)


def test_missing_coordinate_from_another_release(miniature):
    write_miniature(miniature.folder(mh.DATASET), drop_coord="repetition")
    miniature.publish(mh.DATASET)
    with pytest.raises(InvalidInputError, match="repetition.*BrainIO"):
        mh.load_recording("IT")


def test_wrong_time_bin(miniature):
    folder = miniature.folder(mh.DATASET)
    write_miniature(folder)
    path = folder / mh.ASSEMBLY_FILE
    ds = xr.load_dataset(path, engine="h5netcdf").assign_coords(time_bin_start=("time_bin", [0]))
    ds.to_netcdf(path, engine="h5netcdf")
    miniature.publish(mh.DATASET)
    with pytest.raises(InvalidInputError, match=r"time bin \(70, 170\)"):
        mh.load_recording("IT")
