"""Texts read in context: only the stimulus's own tokens are pooled, and the context changes the
stimulus's identity (activation cache key) and, for a model that integrates over tokens, its row."""

import numpy as np
import pandas as pd
import pytest
import torch

from neurobench.benchmarks.pereira2018 import passage_contexts
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import StimulusError
from neurobench.models.text import HookedTextAdapter


class Chars:
    pad_token_id = 0

    def __init__(self, offsets=True):
        self.offsets = offsets

    def __call__(self, texts, add_special_tokens=True, return_special_tokens_mask=False,
                 return_offsets_mapping=False, truncation=False):
        ids = [[1 + ord(c) % 127 for c in t] for t in texts]
        out = {"input_ids": ids, "special_tokens_mask": [[0] * len(i) for i in ids]}
        if return_offsets_mapping and self.offsets:
            out["offset_mapping"] = [[(k, k + 1) for k in range(len(t))] for t in texts]
        return out


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(128, 6)
        self.running = torch.nn.Identity()

    def forward(self, ids):
        return self.running(torch.cumsum(self.emb(ids), dim=1))  # a token sees everything before it


def _adapter(tokenizer=None):
    return HookedTextAdapter(Net(), layers=["emb", "running"], tokenizer=tokenizer or Chars(), max_length=256,
                             identifier="chars", weights_id="t", tokenizer_id="chars", trained=False)


def _stimuli(context):
    texts = ["the cat sat.", "it purred."]
    labels = pd.DataFrame({"context": context}, index=["a", "b"]) if context else pd.DataFrame()
    return StimulusSet("ctx", ["a", "b"], texts=texts, labels=labels)


def test_only_the_stimulus_tokens_are_pooled():
    alone = _adapter().activations(_stimuli(None), ["emb", "running"], cache=False)
    read = _adapter().activations(_stimuli(["", "the cat sat."]), ["emb", "running"], cache=False)
    np.testing.assert_allclose(read["emb"], alone["emb"], rtol=1e-6)  # per-token features: same tokens pooled
    np.testing.assert_allclose(read["running"][0], alone["running"][0], rtol=1e-6)  # empty context: unchanged
    assert not np.allclose(read["running"][1], alone["running"][1])  # the model saw the first sentence


def test_context_is_part_of_the_stimulus_identity():
    assert _stimuli(None).content_hash() != _stimuli(["", "the cat sat."]).content_hash()


def test_context_needs_character_offsets():
    with pytest.raises(StimulusError, match="offsets"):
        _adapter(Chars(offsets=False)).activations(_stimuli(["", "x"]), ["emb"], cache=False)


def test_passage_contexts_are_the_earlier_sentences_of_the_same_passage():
    sentences = ["A one.", "B one.", "A two.", "A three.", "B two."]
    assert passage_contexts(sentences, [1, 2, 1, 1, 2]) == ["", "", "A one.", "A one. A two.", "B one."]
