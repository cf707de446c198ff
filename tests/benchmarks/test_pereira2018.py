"""Pereira et al. (2018) benchmarks on a miniature release: per-participant tar archives holding
`data_384sentences.mat` / `data_243sentences.mat` in the release's MATLAB layout (scipy.io.savemat),
scored through the CLI and the Python API and checked against scikit-learn Ridge."""

from __future__ import annotations

import importlib.util
import io
import tarfile

import numpy as np
import pytest
import scipy.io
from sklearn.linear_model import Ridge

import neurobench as nb
from neurobench.cli import main
from neurobench.errors import (
    AlignmentError,
    DataUnavailableError,
    InvalidInputError,
    NeurobenchError,
)
from neurobench.registry import models
from neurobench.store import ResultStore

pereira = pytest.importorskip("neurobench.benchmarks.pereira2018")

SUBJECTS = ("P01", "M02", "M04")
ATLASES = ("aal", "languageLH", "languageRH", "MD")
WORDS = ("the river bank was full of small boats while children watched from a bridge old music "
         "plays softly in empty halls doctors treat patients with care every morning bread").split()
MODEL = "pereira-tiny-chars"

PLUGIN = f'''
"""A deterministic bag-of-characters language model (no downloads), for the Pereira tests."""
import torch
import neurobench as nb
from neurobench.models.text import HookedTextAdapter


class CharTokenizer:
    pad_token_id = 0

    def __call__(self, texts, add_special_tokens=True, return_special_tokens_mask=False,
                 return_offsets_mapping=False, truncation=False):
        ids = [[1 + ord(c) % 127 for c in t] for t in texts]
        out = {{"input_ids": ids, "special_tokens_mask": [[0] * len(i) for i in ids]}}
        if return_offsets_mapping:
            out["offset_mapping"] = [[(k, k + 1) for k in range(len(t))] for t in texts]
        return out


class CharNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(128, 12)
        self.mix = torch.nn.Sequential(torch.nn.Linear(12, 10), torch.nn.Tanh())

    def forward(self, ids):
        return self.mix(self.emb(ids))


@nb.register_model("{MODEL}", family="custom")
def tiny(seed: int = 0):
    """Embedding + tanh layer over characters, mean-pooled per sentence."""
    torch.manual_seed(seed)
    return HookedTextAdapter(CharNet(), layers=["emb", "mix"], tokenizer=CharTokenizer(), max_length=512,
                             identifier="{MODEL}", weights_id="random-chars", tokenizer_id="chars",
                             trained=False)
'''


# --- the miniature release -------------------------------------------------------------------

def _cells(items, shape) -> np.ndarray:
    arr = np.empty(shape, dtype=object)
    for k, item in enumerate(items):
        arr[np.unravel_index(k, shape, order="F")] = item
    return arr


def make_experiment(n_passages: int, sizes: list[int], seed: int) -> dict:
    """Sentences grouped in passages, and a 3-d latent meaning per sentence shared by all subjects."""
    rng = np.random.default_rng(seed)
    sentences, passages = [], []
    for p in range(n_passages):
        for _ in range(sizes[p]):
            words = rng.choice(WORDS, size=rng.integers(4, 9))
            sentences.append(" ".join(words).capitalize() + f" {len(sentences)}.")
            passages.append(p + 1)
    latent = rng.standard_normal((len(sentences), 3))
    return {"sentences": sentences, "passages": np.asarray(passages), "latent": latent,
            "passage_names": [f"topic{p % 3}_passage{p + 1}" for p in range(n_passages)]}


def make_subject(exp: dict, k: int, seed: int) -> dict:
    """Whole-'brain' voxels; columns per atlas; language voxels carry the shared latent signal."""
    rng = np.random.default_rng(seed)
    n, n_vox = len(exp["sentences"]), 14 + k
    X = exp["latent"] @ rng.standard_normal((3, n_vox)) + 0.8 * rng.standard_normal((n, n_vox))
    cols = rng.permutation(n_vox) + 1  # 1-based MATLAB columns
    rois = {"aal": [("Precentral_L", cols[:3]), ("Frontal_Sup_L", cols[3:5])],
            "languageLH": [("LH_IFGorb", cols[5:7]), ("LH_PostTemp", cols[7:10])],
            "languageRH": [("RH_PostTemp", cols[10:12])],
            "MD": [("LH_MFG", cols[12:14])]}
    return {"X": X, "rois": rois, "order": rng.permutation(n) if k == 2 else np.arange(n)}


def mat_dict(exp: dict, subj: dict) -> dict:
    """The variables of data_<experiment>.mat, in the release's layout (rows: sentences in `order`)."""
    order = subj["order"]
    n, n_vox = subj["X"].shape
    sentences = [exp["sentences"][i] for i in order]
    labels = exp["passages"][order]
    atlas_rois = [subj["rois"][a] for a in ATLASES]
    meta = {
        "subject": "P01", "nvoxels": float(n_vox), "dimx": 4.0, "dimy": 5.0, "dimz": 3.0,
        "colToCoord": np.stack([np.arange(n_vox) % 4 + 1, np.arange(n_vox) % 5 + 1, np.arange(n_vox) % 3 + 1], 1
                               ).astype(np.float64),
        "atlases": _cells(list(ATLASES), (1, len(ATLASES))),
        "rois": _cells([_cells([r for r, _ in rr], (len(rr), 1)) for rr in atlas_rois], (1, len(ATLASES))),
        "roiColumns": _cells([_cells([np.asarray(c, dtype=np.float64).reshape(-1, 1) for _, c in rr], (len(rr), 1))
                              for rr in atlas_rois], (1, len(ATLASES))),
        "roiMultimask": _cells([np.zeros((n_vox, 1)) for _ in ATLASES], (1, len(ATLASES))),
    }
    n_pass = len(exp["passage_names"])
    return {
        "examples_passagesentences": subj["X"][order],
        "examples_passages": np.stack([subj["X"][exp["passages"] == p + 1].mean(0) for p in range(n_pass)]),
        "keySentences": _cells(sentences, (n, 1)),
        "labelsPassageForEachSentence": labels.reshape(-1, 1).astype(np.float64),
        "keyPassages": _cells(exp["passage_names"], (n_pass, 1)),
        "labelsPassageCategory": (np.arange(n_pass) % 3 + 1).reshape(-1, 1).astype(np.float64),
        "keyPassageCategory": _cells(["topic0", "topic1", "topic2"], (1, 3)),
        "meta": meta,
    }


def write_tar(path, members: dict[str, dict]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, variables in members.items():
            buf = io.BytesIO()
            scipy.io.savemat(buf, variables, do_compression=True)
            info = tarfile.TarInfo(name)
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)


def build_release(miniature, edit=None) -> dict:
    """Write <subject>.tar for each subject (both experiments) and publish the manifest."""
    exps = {"384sentences": make_experiment(8, [4] * 8, seed=1),
            "243sentences": make_experiment(8, [3, 4, 3, 4, 3, 3, 4, 3], seed=2)}
    truth = {name: {"exp": exp, "subjects": {s: make_subject(exp, k, seed=10 * k + j)
                                               for k, s in enumerate(SUBJECTS)}}
             for j, (name, exp) in enumerate(exps.items())}
    folder = miniature.folder("pereira2018")
    for s in SUBJECTS:
        members = {f"{s}/data_{name}.mat": mat_dict(t["exp"], t["subjects"][s]) for name, t in truth.items()}
        if edit is not None:
            edit(s, members)
        write_tar(folder / f"{s}.tar", members)
    miniature.publish("pereira2018", groups={f"{s}.": s for s in SUBJECTS})
    return truth


@pytest.fixture
def plugin_file(tmp_path):
    """The tiny model's plugin file; whatever registers it, the model is removed afterwards."""
    plugin = tmp_path / "pereira_tiny_plugin.py"
    plugin.write_text(PLUGIN)
    yield plugin
    if MODEL in models:
        models.remove(MODEL)


@pytest.fixture
def tiny_model(plugin_file):
    spec = importlib.util.spec_from_file_location("pereira_tiny_plugin", plugin_file)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return MODEL


# --- independent reference -------------------------------------------------------------------

def language_truth(truth: dict, experiment: str, sentences: list[str]) -> dict[str, np.ndarray]:
    """Per subject, the generator's language voxels (LH then RH columns, sorted) in `sentences` order."""
    out = {}
    exp = truth[experiment]["exp"]
    row = {s: i for i, s in enumerate(exp["sentences"])}
    for s, subj in truth[experiment]["subjects"].items():
        cols = np.sort(np.concatenate([c for a in ("languageLH", "languageRH") for _, c in subj["rois"][a]])) - 1
        out[s] = subj["X"][[row[t] for t in sentences]][:, cols]
    return out


def fold_centred_r(pred: np.ndarray, y: np.ndarray, folds) -> np.ndarray:
    p, t = pred.copy(), y.copy()
    for _, test in folds:
        p[test] -= p[test].mean(0)
        t[test] -= t[test].mean(0)
    return (p * t).sum(0) / np.sqrt((p * p).sum(0) * (t * t).sum(0))


def sklearn_r(X: np.ndarray, Y: np.ndarray, folds, alpha: float) -> np.ndarray:
    pred = np.zeros_like(Y)
    for train, test in folds:
        pred[test] = Ridge(alpha=alpha).fit(X[train], Y[train]).predict(X[test])
    return fold_centred_r(pred, Y, folds)


def reference_scores(acts: np.ndarray, voxels: dict[str, np.ndarray], folds, alpha: float):
    raws, norms = [], []
    for s, Y in voxels.items():
        others = np.hstack([voxels[o] for o in voxels if o != s])
        rc = sklearn_r(others, Y, folds, alpha)
        ceiling = np.where(rc > 0, rc ** 2, np.nan)
        r = sklearn_r(acts, Y, folds, alpha)
        ok = np.isfinite(ceiling) & np.isfinite(r)
        raws.append(np.median(r[ok]))
        norms.append(np.median(np.sign(r[ok]) * r[ok] ** 2 / ceiling[ok]))
    return float(np.mean(raws)), float(np.mean(norms))


# --- tests -----------------------------------------------------------------------------------

def test_api_matches_sklearn_ridge(miniature, tiny_model):
    truth = build_release(miniature)
    bench = pereira.PereiraEncoding("384sentences", alphas=(3.0,), ceiling_alphas=(3.0,), n_bootstrap=100,
                                    dtype="float64")
    result = nb.score(MODEL, bench, device="cpu")
    stim = bench.stimuli()
    assert stim.modality == "text" and len(stim) == 32
    folds = [(np.asarray(f["train"]), np.asarray(f["test"])) for f in result.provenance["splits"]["folds"]]
    passages = stim.labels["passage"].to_numpy()
    for train, test in folds:  # grouped by passage: no passage on both sides
        assert not set(passages[train]) & set(passages[test])
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(32))
    voxels = language_truth(truth, "384sentences", stim.texts)
    acts = nb.load_model(MODEL).activations(stim, ["emb", "mix"], device="cpu")
    for layer in ("emb", "mix"):
        raw, norm = reference_scores(np.asarray(acts[layer], np.float64), voxels, folds, alpha=3.0)
        row = result.layers.set_index("layer").loc[layer]
        assert row["raw"] == pytest.approx(raw, abs=1e-6)
        assert row["normalized"] == pytest.approx(norm, abs=1e-6)
    assert result.provenance["n_voxels"] == {s: 7 for s in SUBJECTS}
    assert set(result.per_target["subject"]) == set(SUBJECTS)
    assert set(result.provenance["subjects"]) == set(SUBJECTS)
    assert result.ci_low <= result.raw <= result.ci_high
    assert "cross-subject" in result.ceiling_note


def test_cli_and_api_agree(miniature, plugin_file, tmp_path, capsys):
    build_release(miniature)
    store = tmp_path / "s.sqlite"
    code = main(["--plugin", str(plugin_file), "score", "--model", MODEL, "--benchmark",
                 "pereira2018.243sentences-encoding", "--device", "cpu", "--store", str(store), "--quiet"])
    assert code == 0
    assert "pereira2018.243sentences-encoding" in capsys.readouterr().out
    assert nb.load_benchmark("pereira2018.243sentences-encoding").data_status() == (True, "")
    rows = ResultStore(store).rows()
    api = nb.score(MODEL, "pereira2018.243sentences-encoding", device="cpu")
    assert len(rows) >= 1
    stored = rows[rows["benchmark"] == "pereira2018.243sentences-encoding"].iloc[-1]
    assert stored["raw"] == pytest.approx(api.raw, abs=1e-9)
    assert stored["normalized"] == pytest.approx(api.normalized, abs=1e-9)
    assert len(nb.load_benchmark("pereira2018.243sentences-encoding").stimuli()) == 27


def _other_experiment(s, members):
    if s == "P01":  # a full-size Experiment 3 file under Experiment 2's name
        exp = make_experiment(72, [3] * 45 + [4] * 27, seed=5)
        members["P01/data_384sentences.mat"] = mat_dict(exp, make_subject(exp, 0, seed=3))


def _short_keys(s, members):
    if s == "M02":
        members["M02/data_384sentences.mat"]["keySentences"] = members["M02/data_384sentences.mat"]["keySentences"][:-2]


def _foreign_sentences(s, members):
    if s == "M04":
        keys = members["M04/data_384sentences.mat"]["keySentences"]
        keys[0, 0], keys[1, 0] = "A sentence from elsewhere.", "Another stranger."


def _no_language_atlas(s, members):
    if s == "P01":
        meta = members["P01/data_384sentences.mat"]["meta"]
        meta["atlases"] = _cells(["aal", "langLH", "languageRH", "MD"], (1, 4))


def _missing_variable(s, members):
    if s == "P01":
        del members["P01/data_384sentences.mat"]["labelsPassageForEachSentence"]


def _missing_file(s, members):
    if s == "M02":
        del members["M02/data_384sentences.mat"]


@pytest.mark.parametrize("edit, error, words", [
    (_other_experiment, InvalidInputError, ["data_243sentences.mat", "Experiment 2"]),
    (_short_keys, InvalidInputError, ["32 rows", "30 keySentences"]),
    (_foreign_sentences, AlignmentError, ["A sentence from elsewhere."]),
    (_no_language_atlas, InvalidInputError, ["languageLH", "langLH"]),
    (_missing_variable, InvalidInputError, ["labelsPassageForEachSentence", "keySentences"]),
    (_missing_file, DataUnavailableError, ["data_384sentences.mat", "M02/data_243sentences.mat"]),
])
def test_bad_release_files(miniature, edit, error, words):
    build_release(miniature, edit)
    bench = pereira.PereiraEncoding("384sentences")
    with pytest.raises(error) as info:
        bench.responses()
    for word in words:
        assert word in str(info.value)


def test_subjects_that_do_not_exist(miniature):
    build_release(miniature)
    with pytest.raises(NeurobenchError, match=r"\['M08'\] did not take part in Experiment 3.*'M03'"):
        pereira.PereiraEncoding("243sentences", subjects=["M08", "P01"]).selected_subjects()
    with pytest.raises(DataUnavailableError, match=r"no archive for \['M07'\]; it has \['P01', 'M02', 'M04'\]"):
        pereira.PereiraEncoding("243sentences", subjects=["M07", "P01"]).selected_subjects()
    with pytest.raises(InvalidInputError, match="needs >= 2 subjects"):
        pereira.PereiraEncoding("384sentences", subjects=["M02"]).selected_subjects()
    bench = pereira.PereiraEncoding("384sentences", subjects=["M04", "P01"])
    assert bench.selected_subjects() == ("M04", "P01")
    assert bench.data_files == (("pereira2018", "M04.tar"), ("pereira2018", "P01.tar"))
    assert bench.data_status() == (True, "")


def test_ground_truth_features_reach_the_ceiling(miniature):
    """The generator's latent meaning explains the shared signal: normalised ~1; noise scores ~0."""
    truth = build_release(miniature)
    bench = pereira.PereiraEncoding("384sentences", n_bootstrap=200)
    exp = truth["384sentences"]["exp"]
    row = {s: i for i, s in enumerate(exp["sentences"])}
    latent = exp["latent"][[row[t] for t in bench.stimuli().texts]]
    noise = np.random.default_rng(7).standard_normal(latent.shape)
    result = bench.score_activations({"latent": latent, "noise": noise}, seed=0, device="cpu")
    table = result.layers.set_index("layer")
    assert result.best_layer == "latent"
    assert 0.6 < table.loc["latent", "normalized"] < 1.6
    assert abs(table.loc["noise", "normalized"]) < 0.3
