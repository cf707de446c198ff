"""Language-model adapters: tokenisation, batching with attention masks, token pooling.

A text stimulus becomes one row per layer. Which tokens are pooled:
- level="sentence": every token of the text except special tokens ([CLS], [SEP], ...);
- level="word": the tokens of the text's last whitespace-separated word (a word presented in its
  context, as in word-by-word reading experiments: build stimuli with `word_prefixes`).
How: pooling="mean" (average of those tokens) or "last" (the last of them; for a causal model
this is the only token that has seen the whole text).

A stimulus set whose labels have a `context` column (e.g. the preceding sentences of a passage)
is read in context: the model sees context + " " + text, and only the text's tokens are pooled,
as when participants read a sentence as part of its passage.

Texts longer than the model's context raise StimulusError by default (a silently truncated text
is a different stimulus); truncation="left" instead keeps the last tokens (plus leading special
tokens) and logs a warning naming the stimuli it cut.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import torch

from ..data.stimuli import StimulusSet
from ..errors import ExtractionError, InvalidInputError, LayerNotReachedError, StimulusError
from ..progress import progress_bar
from .adapter import Adapter
from .extract import check_rows, model_errors, to_host

log = logging.getLogger(__name__)

POOLINGS = ("mean", "last")
LEVELS = ("sentence", "word")
TRUNCATIONS = ("error", "left")


def word_prefixes(identifier: str, sentences: Sequence[str]) -> StimulusSet:
    """One stimulus per word: sentence s up to and including word w, id 's{i}.w{j}'."""
    ids, texts = [], []
    for i, sentence in enumerate(sentences):
        words = sentence.split()
        for j in range(len(words)):
            ids.append(f"s{i}.w{j}")
            texts.append(" ".join(words[: j + 1]))
    return StimulusSet(identifier, ids, texts=texts)


def stimulus_contexts(stimuli: StimulusSet) -> list[str]:
    """Per stimulus, the text read before it (the `context` label), or "" when there is none."""
    if "context" not in stimuli.labels:
        return [""] * len(stimuli)
    return ["" if not isinstance(c, str) else c.strip() for c in stimuli.labels["context"]]


class TextAdapter(Adapter):
    """Base class for language models; subclasses implement `layers()` and `_hidden`."""

    def __init__(self, tokenizer, max_length: int, identifier: str, weights_id: str,
                 tokenizer_id: str, pooling: str = "mean", level: str = "sentence",
                 truncation: str = "error", trained: bool = True, family: str = "language"):
        for value, allowed, what in ((pooling, POOLINGS, "pooling"), (level, LEVELS, "level"),
                                     (truncation, TRUNCATIONS, "truncation")):
            if value not in allowed:
                raise InvalidInputError(f"{what} must be one of {allowed}, got {value!r}")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.identifier, self.weights_id, self.trained, self.family = identifier, weights_id, trained, family
        self.tokenizer_id = tokenizer_id
        self.pooling, self.level, self.truncation = pooling, level, truncation

    @property
    def preprocess_id(self) -> str:
        return (f"text-{self.tokenizer_id}-{self.level}-{self.pooling}"
                f"-max{self.max_length}-trunc{self.truncation}")

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                layers: list[str]) -> dict[str, torch.Tensor]:
        """(batch, tokens, features) per layer for a right-padded batch."""
        raise NotImplementedError

    def channels(self, layer: str) -> int | None:
        """Number of units the layer gives per text, when known without running the model (the
        shuffled-positions control lays a layer without a sheet of its own out on that many)."""
        return None

    def _device_module(self) -> torch.nn.Module:
        raise NotImplementedError

    # tokenisation ---------------------------------------------------------------------------
    def tokenize(self, stimuli: StimulusSet) -> list[tuple[list[int], list[bool]]]:
        """Per text: token ids and which tokens to pool; checks empties and the context length."""
        if stimuli.modality != "text":
            raise StimulusError(f"{self.identifier} is a language model; stimulus set {stimuli.identifier!r} holds images")
        empty = [sid for sid, text in zip(stimuli.ids, stimuli.texts) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise StimulusError(
                f"stimulus set {stimuli.identifier!r}: {len(empty)} empty or non-text stimuli (e.g. {empty[:3]}); "
                "a language model needs at least one word per stimulus"
            )
        contexts = stimulus_contexts(stimuli)
        texts = [f"{c} {t}" if c else t for c, t in zip(contexts, stimuli.texts)]
        starts = [len(c) + 1 if c else 0 for c in contexts]
        need_offsets = self.level == "word" or any(starts)
        enc = self.tokenizer(texts, add_special_tokens=True, return_special_tokens_mask=True,
                             return_offsets_mapping=need_offsets, truncation=False)
        if need_offsets and "offset_mapping" not in enc:
            raise StimulusError(f"{self.identifier}: reading words or texts in context needs a tokenizer that "
                                "returns character offsets (a Hugging Face 'fast' tokenizer)")
        out, cut = [], []
        for i, (sid, text) in enumerate(zip(stimuli.ids, texts)):
            ids = list(enc["input_ids"][i])
            special = [bool(s) for s in enc["special_tokens_mask"][i]]
            if self.level == "word":
                keep = self._last_word_mask(text, enc["offset_mapping"][i], special)
            elif starts[i]:  # tokens that reach into the stimulus itself, not its context
                keep = [not s and b > starts[i] for (_a, b), s in zip(enc["offset_mapping"][i], special)]
            else:
                keep = [not s for s in special]
            if not any(keep):
                raise StimulusError(f"stimulus {sid!r}: {text!r} gives no tokens to pool")
            if len(ids) > self.max_length:
                if self.truncation == "error":
                    raise StimulusError(
                        f"stimulus {sid!r} has {len(ids)} tokens, more than {self.identifier}'s context of "
                        f"{self.max_length}; shorten it, or build the adapter with truncation='left' to keep "
                        "the last tokens"
                    )
                ids, keep = self._truncate_left(ids, keep, special)
                cut.append(sid)
            out.append((ids, keep))
        if cut:
            log.warning("%s: %d stimuli longer than the context of %d tokens were cut on the left (e.g. %s)",
                        self.identifier, len(cut), self.max_length, cut[:3])
        return out

    @staticmethod
    def _last_word_mask(text: str, offsets, special: list[bool]) -> list[bool]:
        words = list(re.finditer(r"\S+", text))
        start, end = words[-1].span()
        return [not s and b > start and a < end for (a, b), s in zip(offsets, special)]

    def _truncate_left(self, ids: list[int], keep: list[bool], special: list[bool]):
        head = 0
        while head < len(special) and special[head]:
            head += 1
        tail = self.max_length - head
        new_ids, new_keep = ids[:head] + ids[-tail:], keep[:head] + keep[-tail:]
        if not any(new_keep):
            raise StimulusError(f"after cutting to {self.max_length} tokens nothing is left to pool")
        return new_ids, new_keep

    # extraction -----------------------------------------------------------------------------
    def _extract_into(self, stimuli, layers, batch_size, device, sinks, memory_budget=None, workers=0):
        if self.readout is not None and self.readout.needs_fit:
            raise InvalidInputError(f"{self.identifier}: a PCA read-out is for image models; pool or project "
                                    "language-model layers (--readout project=N)")
        tokens = self.tokenize(stimuli)
        pad = getattr(self.tokenizer, "pad_token_id", None)
        pad = 0 if pad is None else int(pad)
        self._device_module().to(device).eval()
        with progress_bar(len(stimuli), f"{self.display_name}: activations") as bar:
            for start in range(0, len(tokens), batch_size):
                chunk = tokens[start:start + batch_size]
                width = max(len(ids) for ids, _ in chunk)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                pool = torch.zeros((len(chunk), width), dtype=torch.bool)
                for row, (ids, keep) in enumerate(chunk):
                    input_ids[row, :len(ids)] = torch.tensor(ids)
                    attention[row, :len(ids)] = 1
                    pool[row, :len(ids)] = torch.tensor(keep)
                with model_errors(), torch.inference_mode():
                    hidden = self._hidden(input_ids.to(device), attention.to(device), layers)
                    missing = [name for name in layers if name not in hidden]
                    if missing:
                        raise LayerNotReachedError(f"{self.identifier}: layer(s) {missing} produced no hidden "
                                                   "states in the forward pass")
                    pooled = {name: self._pool(hidden[name], pool.to(device)) for name in layers}
                    if self.readout is not None:
                        pooled = {name: self.readout(name, x) for name, x in pooled.items()}
                check_rows(pooled, len(chunk))
                sinks.append(to_host(pooled))
                bar.advance(len(chunk))

    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if h.dim() != 3:
            raise ExtractionError(f"expected (batch, tokens, features) hidden states, got shape {tuple(h.shape)}")
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(dim=1) / m.sum(dim=1)
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, positions, -1).max(dim=1).values
        return h[torch.arange(h.shape[0], device=h.device), last]


class HookedTextAdapter(TextAdapter):
    """A torch language model read through forward hooks on named modules.

    `forward(module, input_ids, attention_mask)` runs the model; the default calls
    `module(input_ids)`, right for causal models where padding on the right cannot leak left.
    """

    def __init__(self, module: torch.nn.Module, layers: Sequence[str], default_layers: Sequence[str] | None = None,
                 sheet_layers: dict[str, int] | None = None, forward=None, **kwargs):
        super().__init__(**kwargs)
        self.module = module.eval()
        self._modules = {n: m for n, m in module.named_modules() if n in set(layers)}
        self._layers = list(layers)
        self._default = list(default_layers) if default_layers is not None else list(layers)
        self._sheet = dict(sheet_layers or {})
        self._forward = forward or (lambda m, ids, mask: m(ids))

    def layers(self) -> list[str]:
        return list(self._layers)

    def default_layers(self) -> list[str]:
        return list(self._default)

    def sheet_positions(self, layer: str):
        from .sheet import sheet_positions

        self.check_layers([layer])
        n = self._sheet.get(layer)
        return None if n is None else sheet_positions(n)

    def channels(self, layer: str) -> int | None:
        """Sheet units, else a linear layer's outputs or a layer norm's width; None otherwise."""
        self.check_layers([layer])
        if layer in self._sheet:
            return int(self._sheet[layer])
        mod = self._modules.get(layer)
        if isinstance(mod, torch.nn.Linear):
            return int(mod.out_features)
        weight = getattr(mod, "weight", None)
        if isinstance(mod, torch.nn.LayerNorm) or (isinstance(weight, torch.Tensor) and weight.ndim == 1
                                                   and "norm" in type(mod).__name__.lower()):
            return int(weight.shape[0])
        return None

    def _device_module(self):
        return self.module

    def _hidden(self, input_ids, attention_mask, layers):
        got: dict[str, torch.Tensor] = {}

        def make(name):
            def hook(_mod, _inp, out):
                got[name] = out[0] if isinstance(out, (tuple, list)) else out
            return hook

        handles = [self._modules[n].register_forward_hook(make(n)) for n in layers]
        try:
            self._forward(self.module, input_ids, attention_mask)
        finally:
            for h in handles:
                h.remove()
        return got
