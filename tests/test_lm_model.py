"""The LM engine: model config and presets, the causal LM, the byte-level tokenizer, model folders
(siftline and Hugging Face) and the per-token NLL through `siftline.kernels.token_nll` against
logits.

Everything is built here at tiny sizes (no downloads); Hugging Face models are random-init
Llama / GPT-2 / Gemma-2 / Cohere configs with a locally trained fast tokenizer.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from safetensors import safe_open

from siftline.kernels import token_nll
from siftline.lm.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    SiftlineLM,
    is_model_folder,
    load_causal_lm,
    load_lm,
    save_model,
)
from siftline.lm.config import ModelConfig
from siftline.lm.model import CausalLM, apply_rotary, rotary_tables
from siftline.lm.tokenizer import EOS, Tokenizer, train_tokenizer

IGNORE = -100
WORDS = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "über", "naïve", "café",
         "日本語", "テキスト", "数据", "😀", "selection", "pretraining", "tokens", "model", "\n"]


def make_corpus(n_docs: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(n_docs)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_tokenizer(make_corpus(), vocab_size=300)


def tiny_config(**overrides: Any) -> ModelConfig:
    return ModelConfig(preset="tiny", vocab_size=300, context_length=32, **overrides)


def tiny_model(seed: int = 0, **overrides: Any) -> CausalLM:
    torch.manual_seed(seed)
    return CausalLM(tiny_config(**overrides)).eval()


def random_ids(batch: int, length: int, vocab: int = 300, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- ModelConfig -------------------------------------------------------------------------------

def test_preset_fills_sizes_and_explicit_keys_win() -> None:
    tiny = ModelConfig(preset="tiny")
    assert (tiny.d_model, tiny.n_layers, tiny.n_heads, tiny.vocab_size, tiny.context_length) == (
        64, 2, 4, 2048, 128)
    assert tiny.ff_width == 4 * 64
    mixed = ModelConfig(preset="tiny", d_model=128, context_length=64)
    assert (mixed.d_model, mixed.context_length, mixed.n_layers) == (128, 64, 2)
    assert ModelConfig(preset="150m").tie_embeddings is False
    assert ModelConfig(preset="150m", tie_embeddings=True).tie_embeddings is True
    assert ModelConfig().d_model == 128  # no preset: the field defaults


@pytest.mark.parametrize(("sizes", "message"), [
    ({"d_model": 30, "n_heads": 4}, "d_model 30 is not divisible by n_heads 4"),
    ({"d_model": 12, "n_heads": 4}, "head dimension d_model / n_heads must be even"),
])
def test_bad_head_split_is_named(sizes: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig(**sizes)


def test_unknown_key_and_preset_fail() -> None:
    with pytest.raises(ValidationError, match="dmodel"):
        ModelConfig(dmodel=64)
    with pytest.raises(ValidationError, match="preset"):
        ModelConfig(preset="huge")


def expected_parameters(config: ModelConfig) -> int:
    d, v = config.d_model, config.vocab_size
    block = 3 * d * d + d * d + 2 * d * config.ff_width + 2 * d  # qkv, proj, up/down, two norms
    return v * d * (1 if config.tie_embeddings else 2) + config.n_layers * block + d


def test_parameter_counts_of_presets() -> None:
    tiny = CausalLM(ModelConfig(preset="tiny"))
    assert 100_000 < tiny.num_parameters() < 1_000_000
    assert tiny.num_parameters() == expected_parameters(tiny.config)
    with torch.device("meta"):  # no memory, no init cost
        big = CausalLM(ModelConfig(preset="150m"))
    assert next(big.parameters()).is_meta
    assert 100_000_000 <= big.num_parameters() <= 170_000_000
    assert big.num_parameters() == expected_parameters(big.config)


# --- CausalLM -----------------------------------------------------------------------------------

def test_hidden_states_shape_and_dtype() -> None:
    model = tiny_model()
    hidden = model(random_ids(3, 17))
    assert hidden.shape == (3, 17, 64)
    assert hidden.dtype == torch.float32
    assert torch.isfinite(hidden).all()


@torch.no_grad()
def test_causal_later_tokens_do_not_change_earlier_states() -> None:
    model = tiny_model()
    ids = random_ids(2, 20)
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % 300
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])  # float32 defaults: see below
    assert not torch.allclose(a[:, 12:], b[:, 12:], atol=1e-3)


@torch.no_grad()
def test_right_padding_does_not_change_real_positions() -> None:
    model = tiny_model()
    ids = random_ids(1, 9)
    padded = torch.cat([ids, torch.zeros(1, 15, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9), torch.zeros(1, 15)], dim=1).long()
    expected = model(ids)
    # Another sequence length reorders float32 sums (matmul and attention blocking), so equal
    # states differ by rounding: torch's float32 defaults (rtol 1.3e-6, atol 1e-5) allow a few
    # ulps, far below what a leak of padding into real positions would change.
    torch.testing.assert_close(model(padded)[:, :9], expected)
    lm = SiftlineLM(model, train_tokenizer(["ab"], 258), torch.device("cpu"))
    torch.testing.assert_close(lm.hidden_states(padded, mask)[:, :9], expected)


def test_sequence_longer_than_context_raises() -> None:
    model = tiny_model()
    model(random_ids(1, 32))  # exactly the context is fine
    with pytest.raises(ValueError, match="33 tokens exceeds the context 32"):
        model(random_ids(1, 33))


def test_tied_and_untied_heads() -> None:
    tied = tiny_model()
    assert tied.unembed is None
    assert tied.head().weight is tied.embed.weight
    assert tied.head().bias is None and tied.head().softcap is None
    untied = tiny_model(tie_embeddings=False)
    assert untied.head().weight is untied.unembed.weight
    assert not torch.equal(untied.head().weight, untied.embed.weight)
    assert untied.num_parameters() - tied.num_parameters() == 300 * 64
    hidden = tied(random_ids(1, 5))
    torch.testing.assert_close(tied.logits(hidden), hidden @ tied.embed.weight.T)


@torch.no_grad()
def test_rotary_makes_states_depend_on_order() -> None:
    # Without positions, attention is permutation-invariant over the keys it sees: the last
    # state of [a, b, c] and of [b, a, c] would be equal. Rotary positions tell them apart.
    model = tiny_model()
    forward = model(torch.tensor([[5, 9, 7]]))[0, -1]
    swapped = model(torch.tensor([[9, 5, 7]]))[0, -1]
    assert not torch.allclose(forward, swapped, atol=1e-4)


def test_rotary_preserves_norms_and_is_relative() -> None:
    head_dim, length = 16, 40
    cos, sin = rotary_tables(head_dim, length, 10000.0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, length, head_dim, generator=gen)
    rotated = apply_rotary(x, cos, sin)
    assert rotated.shape == x.shape
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[..., 0, :], x[..., 0, :])  # position 0: no rotation
    assert not torch.allclose(rotated[..., 1:, :], x[..., 1:, :])
    # q at m and k at n score by m - n only: same vectors at positions shifted by 11.
    q, k = torch.randn(head_dim, generator=gen), torch.randn(head_dim, generator=gen)

    def score(m: int, n: int) -> torch.Tensor:
        rq = apply_rotary(q.expand(1, 1, length, head_dim), cos, sin)[0, 0, m]
        rk = apply_rotary(k.expand(1, 1, length, head_dim), cos, sin)[0, 0, n]
        return rq @ rk

    torch.testing.assert_close(score(7, 3), score(18, 14), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(score(7, 3), score(7, 4), atol=1e-4)


# --- loss through the fused kernel --------------------------------------------------------------

@torch.no_grad()
@pytest.mark.parametrize("tie", [True, False])
def test_token_nll_matches_cross_entropy_on_logits(tie: bool) -> None:
    model = tiny_model(tie_embeddings=tie)
    ids = random_ids(3, 24)
    hidden = model(ids[:, :-1])
    targets = ids[:, 1:].clone()
    targets[0, :4] = IGNORE
    head = model.head()
    nll = token_nll(hidden.reshape(-1, 64), head.weight, targets.reshape(-1), backend="torch")
    expected = F.cross_entropy(model.logits(hidden).reshape(-1, 300), targets.reshape(-1),
                               reduction="none", ignore_index=IGNORE)
    assert nll.dtype == torch.float32 and nll.shape == (3 * 23,)
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-6)
    assert (nll.view(3, 23)[0, :4] == 0).all()


# --- tokenizer ----------------------------------------------------------------------------------

def test_tokenizer_vocab_and_special_id(tokenizer: Tokenizer) -> None:
    assert tokenizer.vocab_size == 300
    assert tokenizer.bos_id is not None
    assert tokenizer.bos_id == tokenizer._tok.token_to_id(EOS)
    assert tokenizer.encode_batch([""]) == [[]]
    assert tokenizer.decode([]) == ""
    # too little text to learn merges: the vocabulary stops short, it is never padded
    assert 258 <= train_tokenizer(["ab ab"], 1000).vocab_size < 1000


@pytest.mark.parametrize("text", [
    "plain ascii words",
    "emoji 😀👍🏽 and a family 👨\u200d👩\u200d👧",
    "日本語のテキストと中文数据",
    "combining e\u0301 vs é, a\u0308\u0323",
    "controls \x00\x01\x07\x1b[0m\x7f and \u200b\ufeff",
    "windows\r\nlines\rand\ttabs\n\n",
    "  leading and trailing spaces  ",
    "\U0010ffff private \ue000 and ￿",
])
def test_tokenizer_round_trips_any_text(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode_batch([text])[0]
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text


def test_tokenizer_batch_matches_single(tokenizer: Tokenizer) -> None:
    texts = ["the cat", "", "日本語 😀"]
    assert tokenizer.encode_batch(texts) == [tokenizer.encode_batch([t])[0] for t in texts]


def test_tokenizer_save_load_same_ids(tokenizer: Tokenizer, tmp_path: Path) -> None:
    texts = make_corpus(5, seed=7) + ["über 😀 \r\n"]
    path = tokenizer.save(tmp_path / "tok")
    assert path == tmp_path / "tok" / "tokenizer.json" and path.is_file()
    loaded = Tokenizer.load(tmp_path / "tok")
    assert loaded.encode_batch(texts) == tokenizer.encode_batch(texts)
    assert (loaded.bos_id, loaded.vocab_size) == (tokenizer.bos_id, tokenizer.vocab_size)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        Tokenizer.load(tmp_path)


def test_literal_separator_text_is_not_the_special_token(tokenizer: Tokenizer) -> None:
    text = f"before {EOS} after"
    ids = tokenizer.encode_batch([text])[0]
    assert tokenizer.bos_id not in ids
    assert tokenizer.decode(ids) == text


def test_tokenizer_too_small_vocab_rejected() -> None:
    with pytest.raises(ValueError, match="at least 258 entries, got 257"):
        train_tokenizer(["abc"], 257)


# --- siftline model folders ---------------------------------------------------------------------

@pytest.mark.parametrize("tie", [True, False])
def test_save_and_load_round_trip(tie: bool, tokenizer: Tokenizer, tmp_path: Path) -> None:
    model = tiny_model(seed=3, tie_embeddings=tie)
    folder = save_model(tmp_path / "m", model, tokenizer, extra={"note": "x"})
    assert {p.name for p in folder.iterdir()} == {WEIGHTS_FILE, CONFIG_FILE, "tokenizer.json"}
    assert json.loads((folder / CONFIG_FILE).read_text())["note"] == "x"
    assert is_model_folder(folder)
    loaded = load_causal_lm(folder).eval()
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert torch.equal(tensor, restored[name]), name
    ids = random_ids(2, 16)
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as f:
        keys = set(f.keys())
        stored = sum(f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[-1]
                     if len(f.get_slice(k).get_shape()) == 2 else f.get_slice(k).get_shape()[0]
                     for k in keys)
    assert ("unembed.weight" in keys) is not tie
    assert stored == model.num_parameters()  # the tied matrix is stored once


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_load_lm_siftline_folder(dtype: str, tokenizer: Tokenizer, tmp_path: Path) -> None:
    model = tiny_model(seed=4)
    save_model(tmp_path, model, tokenizer)
    lm = load_lm(tmp_path, device="cpu", dtype=dtype)
    assert isinstance(lm, SiftlineLM)
    assert lm.device == torch.device("cpu") and lm.context_length == 32
    assert not lm.model.training
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert all(p.dtype == getattr(torch, dtype) and p.device.type == "cpu"
               for p in lm.model.parameters())
    assert lm.head().weight.dtype == getattr(torch, dtype)
    assert lm.tokenizer.encode_batch(["the cat 😀"]) == tokenizer.encode_batch(["the cat 😀"])
    ids = random_ids(1, 10)
    hidden = lm.hidden_states(ids, torch.ones_like(ids))
    assert hidden.dtype == getattr(torch, dtype)
    with torch.no_grad():
        expected = model(ids)
    tol = 1e-6 if dtype == "float32" else 0.1
    torch.testing.assert_close(hidden.float(), expected, rtol=tol, atol=tol)


def test_load_lm_not_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "stuff.txt").write_text("hello")
    assert not is_model_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_lm(tmp_path, device="cpu")


def test_load_lm_format_version_mismatch(tokenizer: Tokenizer, tmp_path: Path) -> None:
    save_model(tmp_path, tiny_model(), tokenizer)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["format"] = 99
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unsupported format 99"):
        load_lm(tmp_path, device="cpu")


# --- Hugging Face model folders -----------------------------------------------------------------

def hf_tokenizer() -> Any:
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(make_corpus(seed=5), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOS, eos_token=EOS)


def hf_configs(vocab: int, eos: int) -> dict[str, tuple[Any, Any]]:
    """name -> (config, model class) of tiny random HF causal LMs this transformers offers."""
    import transformers as tf

    special = {"vocab_size": vocab, "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos}
    configs = {
        "llama": (tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, max_position_embeddings=64, **special),
                  tf.LlamaForCausalLM),
        "gpt2": (tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=48, **special),
                 tf.GPT2LMHeadModel),
    }
    if hasattr(tf, "Gemma2Config"):
        configs["gemma2"] = (
            tf.Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                            max_position_embeddings=40, final_logit_softcapping=2.0,
                            initializer_range=1.0, **special),  # logits well past the cap
            tf.Gemma2ForCausalLM)
    if hasattr(tf, "CohereConfig"):
        configs["cohere"] = (
            tf.CohereConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                            num_attention_heads=4, max_position_embeddings=64, logit_scale=0.0625,
                            **special),
            tf.CohereForCausalLM)
    scaled = tf.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                            num_attention_heads=4, max_position_embeddings=64, **special)
    scaled.logit_scale = 2.0
    configs["llama_scaled"] = (scaled, tf.LlamaForCausalLM)
    return configs


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("transformers")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    fast = hf_tokenizer()
    eos = fast.convert_tokens_to_ids(EOS)
    folders = {}
    for name, (config, model_class) in hf_configs(len(fast), eos).items():
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(name)
        model_class(config).save_pretrained(folder)
        fast.save_pretrained(folder)
        folders[name] = folder
    return folders


def hf_folder(hf_folders: dict[str, Path], name: str) -> Path:
    if name not in hf_folders:
        pytest.skip(f"this transformers has no {name} model")
    return hf_folders[name]


def right_pad(rows: list[list[int]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def kernel_nll(lm: Any, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Per-row NLL of tokens 1..n-1 from hidden states + head through the fused kernel."""
    targets = torch.where(mask[:, 1:].bool(), ids[:, 1:], IGNORE)
    head = lm.head()
    with torch.inference_mode():
        hidden = lm.hidden_states(ids, mask)[:, :-1]
        nll = token_nll(hidden.reshape(-1, hidden.shape[-1]), head.weight, targets.reshape(-1),
                        bias=head.bias, softcap=head.softcap, backend="torch")
    nll = nll.view(targets.shape)
    return [nll[i, : int(mask[i].sum()) - 1] for i in range(len(ids))]


def reference_nll(model: Any, row: list[int]) -> torch.Tensor:
    """NLL from the HF model's own logits on the unpadded row."""
    ids = torch.tensor([row])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    return F.cross_entropy(logits, ids[0, 1:], reduction="none")


@pytest.mark.parametrize("name", ["llama", "gpt2", "gemma2"])
def test_hf_nll_matches_model_logits(name: str, hf_folders: dict[str, Path]) -> None:
    lm = load_lm(hf_folder(hf_folders, name), device="cpu", dtype="float32")
    assert not lm.model.training
    assert all(not p.requires_grad for p in lm.model.parameters())
    texts = ["the cat sat on a mat while dogs ran", "日本語 😀 café", "a"]
    rows = [[lm.tokenizer.bos_id] + ids for ids in lm.tokenizer.encode_batch(texts)]
    expected = [reference_nll(lm.model, row) for row in rows]
    for i, row in enumerate(rows):  # one unpadded row at a time
        ids = torch.tensor([row])
        (got,) = kernel_nll(lm, ids, torch.ones_like(ids))
        torch.testing.assert_close(got, expected[i], rtol=1e-4, atol=1e-5)
    ids, mask = right_pad(rows)  # one right-padded batch with its attention mask
    assert not mask.all()
    for got, want in zip(kernel_nll(lm, ids, mask), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_hf_context_length_tokenizer_and_tied_head(hf_folders: dict[str, Path]) -> None:
    llama = load_lm(hf_folders["llama"], device="cpu", dtype="float32")
    gpt2 = load_lm(hf_folders["gpt2"], device="cpu", dtype="float32")
    assert (llama.context_length, gpt2.context_length) == (64, 48)
    assert llama.device == torch.device("cpu")
    head = gpt2.head()  # GPT-2's lm_head is tied to the token embedding
    assert head.weight.data_ptr() == gpt2.model.transformer.wte.weight.data_ptr()
    assert head.bias is None and head.softcap is None
    tok = gpt2.tokenizer
    assert tok.bos_id == hf_tokenizer().convert_tokens_to_ids(EOS)
    for text in ["the cat 😀\r\n", "", f"injected {EOS} separator"]:
        ids = tok.encode_batch([text])[0]
        assert tok.bos_id not in ids  # literal special-token text stays text
        assert tok.decode(ids) == text


def test_hf_load_in_bfloat16(hf_folders: dict[str, Path]) -> None:
    lm = load_lm(hf_folders["llama"], device="cpu", dtype="bfloat16")
    assert lm.model.dtype == torch.bfloat16 and lm.head().weight.dtype == torch.bfloat16
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    (got,) = kernel_nll(lm, ids, torch.ones_like(ids))
    reference = load_lm(hf_folders["llama"], device="cpu", dtype="float32")
    (want,) = kernel_nll(reference, ids, torch.ones_like(ids))
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)


def test_hf_gemma2_softcap_is_applied(hf_folders: dict[str, Path]) -> None:
    lm = load_lm(hf_folder(hf_folders, "gemma2"), device="cpu", dtype="float32")
    head = lm.head()
    assert head.softcap == 2.0 and lm.context_length == 40
    row = [lm.tokenizer.bos_id] + lm.tokenizer.encode_batch(["the cat sat"])[0]
    ids = torch.tensor([row])
    with torch.inference_mode():
        hidden = lm.hidden_states(ids, torch.ones_like(ids))[0, :-1]
        uncapped = token_nll(hidden, head.weight, ids[0, 1:], backend="torch")
    (capped,) = kernel_nll(lm, ids, torch.ones_like(ids))
    want = reference_nll(lm.model, row)
    torch.testing.assert_close(capped, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(uncapped, want, rtol=0.1)  # the cap matters at this scale


@pytest.mark.parametrize("name", ["llama_scaled", "cohere"])
def test_hf_logit_scale_refused(name: str, hf_folders: dict[str, Path]) -> None:
    folder = hf_folder(hf_folders, name)
    with pytest.raises(ValueError, match=r"config\.logit_scale = .* rescales logits"):
        load_lm(folder, device="cpu", dtype="float32")


def test_hf_unknown_rescaling_caught_by_probe(hf_folders: dict[str, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import siftline.lm.hf as hf

    folder = hf_folder(hf_folders, "cohere")
    monkeypatch.setattr(hf, "UNSUPPORTED_SCALES", ())  # as if the key were not known
    with pytest.raises(ValueError, match="do not reproduce CohereForCausalLM's logits"):
        load_lm(folder, device="cpu", dtype="float32")


def test_hf_without_transformers_is_a_clear_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert is_model_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "transformers", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"needs transformers: pip install 'siftline\[hf\]'"):
        load_lm(tmp_path, device="cpu")
