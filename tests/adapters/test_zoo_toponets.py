"""TopoNets ResNet-50, ViT-B/32 and NanoGPT: release-format checkpoints, strict loading, bad input."""

import argparse
import hashlib

import numpy as np
import pytest
import torch
import torchvision

import neurobench as nb
import neurobench.adapters.huggingface as hf
from neurobench.adapters import toponets
from neurobench.adapters.nanogpt import GPT, GPTConfig
from neurobench.adapters.toponets import (
    VerifiedHubWeights,
    make_toponanogpt,
    make_topovit,
    read_nested_checkpoint,
    topo_resnet,
)
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import CheckpointError, LayerError

SMALL = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=30528)


class Opaque:
    """Stands in for the non-tensor objects a training checkpoint pickles (needs a full load)."""

    def __init__(self):
        self.lr = 0.1


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf.minilm_folder())


def nanogpt_release_keys(n_layer: int) -> set[str]:
    """The key layout of the release's nanoGPT (bias=False), written out independently."""
    keys = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "lm_head.weight"}
    for i in range(n_layer):
        keys |= {f"transformer.h.{i}.{k}.weight" for k in
                 ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")}
    return keys


def save_nanogpt_release(model: GPT, path, cfg: GPTConfig):
    """As nanoGPT's train.py saves a torch.compile'd model: weights under 'model', `_orig_mod.` prefix."""
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.block_size,
                bias=False, vocab_size=cfg.vocab_size, dropout=0.0)
    torch.save({"model": state, "model_args": args, "iter_num": 100, "best_val_loss": 3.2}, path)


def test_nanogpt_key_layout_matches_release():
    with torch.device("meta"):  # shapes and names only: skip the 124M-parameter initialisation
        model = GPT(GPTConfig())
    assert set(model.state_dict()) == nanogpt_release_keys(12)
    assert model.transformer.wte.weight is model.lm_head.weight
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["transformer.wte.weight"] == (50304, 768) and shapes["transformer.wpe.weight"] == (1024, 768)
    assert shapes["transformer.h.11.attn.c_attn.weight"] == (2304, 768)
    assert shapes["transformer.h.0.mlp.c_fc.weight"] == (3072, 768)


def test_nanogpt_matches_transformers_gpt2():
    """Same maths as GPT-2 (exact GELU, zero biases): our module against transformers' GPT2Model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    ours = GPT(SMALL).eval()
    ref = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=SMALL.vocab_size,
                                     activation_function="gelu", resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)).eval()
    sd = ref.state_dict()
    for k in list(sd):
        if k.endswith(".bias"):
            sd[k] = torch.zeros_like(sd[k])
    mine = ours.state_dict()
    sd["transformer.wte.weight"] = mine["transformer.wte.weight"]
    sd["lm_head.weight"] = mine["lm_head.weight"]
    sd["transformer.wpe.weight"] = mine["transformer.wpe.weight"]
    for i in range(2):
        for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):  # Conv1D stores W transposed
            sd[f"transformer.h.{i}.{name}.weight"] = mine[f"transformer.h.{i}.{name}.weight"].T
        for name in ("ln_1", "ln_2"):
            sd[f"transformer.h.{i}.{name}.weight"] = mine[f"transformer.h.{i}.{name}.weight"]
    sd["transformer.ln_f.weight"] = mine["transformer.ln_f.weight"]
    ref.load_state_dict(sd)
    idx = torch.randint(0, SMALL.vocab_size, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), ref(idx).logits, atol=1e-4, rtol=1e-4)


def test_nanogpt_release_checkpoint_loads_and_reads_layers(tmp_path, tokenizer):
    torch.manual_seed(3)
    ref = GPT(SMALL).eval()
    path = tmp_path / "tau_3.0.pt"
    save_nanogpt_release(ref, path, SMALL)
    a = make_toponanogpt(3.0, weights=str(path), tokenizer=tokenizer, config=SMALL, pooling="last")
    assert a.trained and a.identifier == "toponanogpt-tau3"
    torch.testing.assert_close(a.module.state_dict()["lm_head.weight"], ref.state_dict()["lm_head.weight"])
    s = StimulusSet("t", ["a", "b"], texts=["the cat sat", "a dog"])
    acts = a.activations(s, cache=False)
    assert acts["transformer.h.1"].shape == (2, 32) and acts["transformer.h.0.mlp.c_fc"].shape == (2, 128)
    assert a.sheet_positions("transformer.h.1.mlp.c_fc").shape == (128, 2)
    assert a.sheet_positions("transformer.h.1") is None
    with pytest.raises(LayerError, match="valid layers.*transformer.h.0"):
        a.activations(s, layers=["transformer.h.9"], cache=False)


def test_nanogpt_other_tau_and_architecture_refused(tmp_path, tokenizer):
    path = tmp_path / "tau_0.5.pt"
    save_nanogpt_release(GPT(SMALL), path, SMALL)
    with pytest.raises(CheckpointError, match="tau=0.5.*tau_50.0.pt"):
        make_toponanogpt(50.0, weights=str(path), tokenizer=tokenizer, config=SMALL)
    other = tmp_path / "tau_50.0.pt"
    save_nanogpt_release(GPT(GPTConfig(n_layer=3, n_head=2, n_embd=32, block_size=16, vocab_size=30528)), other,
                         SMALL)
    with pytest.raises(CheckpointError, match="unexpected key"):
        make_toponanogpt(50.0, weights=str(other), tokenizer=tokenizer, config=SMALL)
    blob = path.read_bytes()
    cut = tmp_path / "cut" / "tau_0.5.pt"
    cut.parent.mkdir()
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        make_toponanogpt(0.5, weights=str(cut), tokenizer=tokenizer, config=SMALL)


def test_text_longer_than_context(tokenizer):
    a = make_toponanogpt(50.0, weights="random", tokenizer=tokenizer, config=SMALL)
    long = StimulusSet("long", ["x"], texts=[" ".join(["word"] * 40)])
    with pytest.raises(nb.errors.StimulusError, match="more than .* context of 16"):
        a.activations(long, cache=False)


def test_resnet50_release_layout_and_strict_load(tmp_path):
    model = topo_resnet("resnet50")
    keys = set(model.state_dict())
    assert {"layer2.0.conv2.conv.weight", "layer2.0.conv2.blur_filter", "layer4.0.downsample.0.conv.weight"} <= keys
    assert "layer2.0.conv1.weight" in keys  # 1x1 stride-1 conv: not wrapped
    a18 = topo_resnet("resnet18")
    torch.save(a18.state_dict(), tmp_path / "all_topo_tau_30.0.pt")
    with pytest.raises(CheckpointError, match="missing key.*unexpected key"):
        nb.load_model("toporesnet50", weights=str(tmp_path / "all_topo_tau_30.0.pt"))


@pytest.mark.slow
def test_resnet50_release_checkpoint_reproduces_outputs(tmp_path):
    torch.manual_seed(2)
    ref = topo_resnet("resnet50").eval()
    path = tmp_path / "all_topo_tau_30.0.pt"
    torch.save(ref.state_dict(), path)
    a = nb.load_model("toporesnet50", weights=str(path))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(a.module(x), ref(x))
    assert a.sheet_positions("layer3.2.conv3").shape == (1024, 2)
    assert a.sheet_positions("layer4.0").shape == (2048, 2)


def test_resnet_other_tau_file_refused(tmp_path):
    torch.save(topo_resnet("resnet18").state_dict(), tmp_path / "all_topo_tau_5.0.pt")
    with pytest.raises(CheckpointError, match="tau=5.*toporesnet|tau=5"):
        nb.load_model("toporesnet18-tau50", weights=str(tmp_path / "all_topo_tau_5.0.pt"))


def _small_nested(tmp_path, extra):
    state = {"w": torch.arange(4.0)}
    path = tmp_path / "tau_10.0.pt"
    torch.save({"model": state, **extra}, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_nested_checkpoint_pickle_needs_trust(tmp_path, monkeypatch):
    path, sha = _small_nested(tmp_path, {"opaque": Opaque()})
    with pytest.raises(CheckpointError, match=f"NEUROBENCH_TRUSTED_SHA256={sha}"):
        read_nested_checkpoint(path, "model")
    assert torch.equal(read_nested_checkpoint(path, "model", trusted_sha256=sha)["w"], torch.arange(4.0))
    with pytest.raises(CheckpointError):
        read_nested_checkpoint(path, "model", trusted_sha256="0" * 64)
    monkeypatch.setenv("NEUROBENCH_TRUSTED_SHA256", f"abc,{sha}")
    assert "w" in read_nested_checkpoint(path, "model")


def test_nested_checkpoint_with_argparse_namespace_is_weights_only(tmp_path):
    path, _ = _small_nested(tmp_path, {"args": argparse.Namespace(lr=0.1, model="vit_b_32"), "epoch": 3})
    assert "w" in read_nested_checkpoint(path, "model")  # no trust needed


class FakeHub:
    """Monkeypatched huggingface_hub: serves one file and reports an LFS sha256 for it."""

    def __init__(self, blob: bytes, lfs_sha: str, root):
        self.blob, self.lfs_sha, self.root, self.downloads = blob, lfs_sha, root, 0

    def model_info(self, repo_id, revision=None, files_metadata=False):
        lfs = argparse.Namespace(sha256=self.lfs_sha)
        return argparse.Namespace(siblings=[argparse.Namespace(rfilename="tau_10.0.pt", lfs=lfs)])

    def download(self, repo_id, filename, revision=None, cache_dir=None):
        self.downloads += 1
        path = self.root / filename
        path.write_bytes(self.blob)
        return str(path)


def _patch_hub(monkeypatch, fake):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: fake)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.download)
    monkeypatch.delenv("NEUROBENCH_OFFLINE", raising=False)


def test_verified_hub_fetch(tmp_path, monkeypatch, fresh_home):
    blob = b"checkpoint bytes"
    good = hashlib.sha256(blob).hexdigest()
    fake = FakeHub(blob, good, tmp_path)
    _patch_hub(monkeypatch, fake)
    hub = VerifiedHubWeights("murtylab/topo-vit-b-32-imagenet", "tau_10.0.pt")
    path, sha = hub.fetch_verified()
    assert sha == good and path.read_bytes() == blob
    bad = FakeHub(blob, "f" * 64, tmp_path)
    _patch_hub(monkeypatch, bad)
    (fresh_home / "hub-verified").exists() and [p.unlink() for p in (fresh_home / "hub-verified").iterdir()]
    with pytest.raises(CheckpointError, match="sha256 expected f+"):
        hub.fetch_verified()
    assert not (tmp_path / "tau_10.0.pt").exists()  # the unverified copy is deleted


def test_topovit_offline_and_random():
    with pytest.raises(CheckpointError, match="--weights PATH.*--weights random"):
        nb.load_model("topovit_b_32")
    a = make_topovit(weights="random")
    assert a.sheet_positions("encoder.layers.encoder_layer_3.mlp.0").shape == (3072, 2)
    assert a.sheet_positions("encoder.layers.encoder_layer_3") is None


@pytest.mark.slow
def test_topovit_release_checkpoint_equals_torchvision(tmp_path):
    torch.manual_seed(4)
    ref = torchvision.models.vit_b_32(weights=None).eval()
    path = tmp_path / "tau_10.0.pt"
    torch.save({"model": ref.state_dict(), "opaque": Opaque(), "epoch": 299}, path)
    with pytest.raises(CheckpointError, match="pickled"):
        make_topovit(weights=str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    a = make_topovit(weights=str(path), trusted_sha256=sha)
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(a.module(x), ref(x))
    rng = np.random.default_rng(0)
    s = StimulusSet("two", ["a", "b"], images=[rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in "ab"])
    acts = a.activations(s, layers=["encoder.layers.encoder_layer_11", "heads.head"], cache=False)
    assert acts["heads.head"].shape == (2, 1000) and acts["encoder.layers.encoder_layer_11"].shape == (2, 50 * 768)


def test_registered_ids_and_meta():
    names = nb.registry.models.names()
    for name in ("toporesnet50", "toporesnet50-tau30", "topovit_b_32", "topovit_b_32-tau10", "toponanogpt",
                 "toponanogpt-tau0.5", "toponanogpt-tau1", "toponanogpt-tau3", "toponanogpt-tau50"):
        assert name in names
        meta = nb.registry.models.get(name).meta
        assert meta["family"] == "toponets" and meta["source"].startswith("hf:murtylab/")
        assert meta["weights"].cached_path() is None
    assert nb.registry.models.get("toponanogpt").meta["tau"] == toponets.NANOGPT.default_tau == 50.0


def test_plain_hub_weights_are_checked_too(tmp_path, monkeypatch, fresh_home):
    from neurobench.models.weights import HubWeights

    blob = b"state dict bytes"
    fake = FakeHub(blob, hashlib.sha256(blob).hexdigest(), tmp_path)
    _patch_hub(monkeypatch, fake)
    assert HubWeights("murtylab/topo-vit-b-32-imagenet", "tau_10.0.pt").fetch().read_bytes() == blob
    _patch_hub(monkeypatch, FakeHub(blob, "0" * 64, tmp_path))
    with pytest.raises(CheckpointError, match="sha256 expected 0+"):
        HubWeights("murtylab/topo-vit-b-32-imagenet", "tau_10.0.pt", revision="other").fetch()
    _patch_hub(monkeypatch, FakeHub(blob, None, tmp_path))
    with pytest.raises(CheckpointError, match="no sha256"):
        HubWeights("murtylab/topo-vit-b-32-imagenet", "tau_10.0.pt", revision="third").fetch()
