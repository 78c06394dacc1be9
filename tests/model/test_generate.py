"""Generation: greedy equal to transformers' `generate`, the window-bounded KV cache, sampling, stop
sequences and the streaming interface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from stackcoder.model import Starcoder2, get_size
from stackcoder.model.generate import (
    KVCache,
    SamplingParams,
    TextState,
    generate,
    generate_text,
    sample,
    stream,
)

TOKENIZER = Path(__file__).parents[1] / "fixtures" / "model" / "tokenizer.json"


def random_model(seed: int = 0, **overrides) -> Starcoder2:
    torch.manual_seed(seed)
    model = Starcoder2(get_size("debug", vocab_size=400, **overrides)).eval()
    with torch.no_grad():  # spread-out logits, so greedy choices are far from ties and vary with input
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
            else:
                p.normal_(1.0 if "norm" in name and name.endswith("weight") else 0.0, 0.1)
    return model


def transformers_copy(model: Starcoder2) -> torch.nn.Module:
    transformers = pytest.importorskip("transformers", reason="the reference implementation")
    theirs = transformers.Starcoder2ForCausalLM(transformers.Starcoder2Config(**model.config.to_hf_dict()))
    theirs.load_state_dict(model.state_dict())
    return theirs.eval()


def reference_generate(theirs, prompts, n, eos=None) -> list[list[int]]:
    """transformers' greedy generate on left-padded prompts, cut at the first eos."""
    T = max(map(len, prompts))
    ids = torch.tensor([[0] * (T - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])
    out = theirs.generate(
        ids, attention_mask=mask, max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=0
    )[:, T:].tolist()
    return [row[: row.index(eos)] if eos in row else row for row in out]


@pytest.mark.parametrize("window", [None, 8, 40])
def test_greedy_equals_transformers(window):
    """Window 8 is shorter than prompt + generation (and than the longest prompt); 40 is not."""
    model = random_model(sliding_window=window)
    prompts = [list(range(40, 52)), [7, 8, 9], list(range(100, 107))]
    got = generate(model, prompts, SamplingParams(max_new_tokens=25))
    assert got == reference_generate(transformers_copy(model), prompts, 25)
    assert len({tuple(g) for g in got}) == 3  # rows depend on their prompts
    if window == 8:  # the window changes what is generated: the cache really drops old keys
        model.config.sliding_window = None
        assert got != generate(model, prompts, SamplingParams(max_new_tokens=25))


def test_greedy_stops_at_eos_like_transformers():
    model = random_model(sliding_window=8)
    prompts = [list(range(40, 52)), [7, 8, 9]]
    free = generate(model, prompts, SamplingParams(max_new_tokens=20))
    eos = free[0][6]  # a token the first row produces: it must stop there
    got = generate(model, prompts, SamplingParams(max_new_tokens=20), stop_token_ids=[eos])
    assert got[0] == free[0][: free[0].index(eos)]
    assert got == reference_generate(transformers_copy(model), prompts, 20, eos=eos)


@pytest.mark.parametrize("window", [None, 6])
def test_cache_matches_full_forward_in_any_chunking(window):
    """Prefill, single-token decode and multi-token chunks after a prefix all give the logits of one
    forward over the whole sequence; the cache never holds more than the window."""
    model = random_model(sliding_window=window)
    x = torch.randint(0, 400, (2, 30))
    with torch.no_grad():
        full, _ = model(x)
        cache = KVCache(model, batch_size=2, max_len=30)
        start = 0
        for n in (5, 1, 1, 7, 1, 3, 9, 1, 2):
            got, _ = model(x[:, start : start + n], cache=cache)
            # logits here reach ~25: fp32 rounding of another kernel path (masked vs causal SDPA, other
            # key order) is a few 1e-6 of that, so 1e-5 relative to the largest logit
            assert (got - full[:, start : start + n]).abs().max() <= 1e-5 * full.abs().max(), (start, n)
            start += n
    assert start == 30
    assert cache.k[0].shape[2] == (30 if window is None else window)


def test_cache_memory_is_bounded_by_the_window():
    model = random_model(sliding_window=8)
    cache = KVCache(model, batch_size=3, max_len=10_000)
    assert [k.shape for k in cache.k] == [torch.Size([3, 2, 8, 16])] * 2
    assert KVCache(model, batch_size=1, max_len=5).capacity == 5  # short jobs allocate less


def test_sample_top_k_top_p_and_temperature():
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]])).expand(4000, 4)
    g = torch.Generator().manual_seed(0)

    def counts(**kw) -> list[int]:
        tokens, logprobs = sample(logits, SamplingParams(temperature=1.0, **kw), g)
        assert torch.isfinite(logprobs).all()
        return torch.bincount(tokens, minlength=4).tolist()

    assert counts(top_k=2)[2:] == [0, 0]
    top_p = counts(top_p=0.65)  # 0.4 + 0.3 reach 0.65: the last two are out
    assert top_p[2:] == [0, 0] and min(top_p[:2]) > 1000
    free = counts()
    assert all(c > 200 for c in free) and abs(free[0] / 4000 - 0.4) < 0.05
    cold, _ = sample(logits, SamplingParams(temperature=0.1), g)
    assert (cold == 0).float().mean() > 0.9  # low temperature: nearly greedy
    greedy, lp = sample(logits[:2], SamplingParams(temperature=0.0))
    assert greedy.tolist() == [0, 0] and torch.allclose(lp, torch.log(torch.tensor([0.4, 0.4])))


def test_sampling_is_reproducible_with_a_seed():
    model = random_model()
    # this random model's logits are peaked (range ~50): a high temperature makes sampling matter
    params = SamplingParams(max_new_tokens=15, temperature=8.0, top_p=0.9, seed=123)
    a = generate(model, [[5, 6, 7]], params)
    assert a == generate(model, [[5, 6, 7]], params)
    others = {
        tuple(generate(model, [[5, 6, 7]], SamplingParams(max_new_tokens=15, temperature=8.0, seed=s))[0])
        for s in range(4)
    }
    assert len(others) > 1
    # top_k=1 is greedy whatever the temperature
    assert generate(
        model, [[5, 6, 7]], SamplingParams(max_new_tokens=15, temperature=2.0, top_k=1, seed=1)
    ) == generate(model, [[5, 6, 7]], SamplingParams(max_new_tokens=15))


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(TOKENIZER))


def test_text_state_holds_back_partial_characters_and_stop_prefixes(tokenizer):
    text = "x = 1 ✓ # done\nprint(x)"
    ids = tokenizer.encode(text).ids
    state = TextState(tokenizer, stop=["# done"])
    pieces = [state.push(i) for i in ids]
    assert state.done and "".join(pieces) == "x = 1 ✓ "
    assert all("\ufffd" not in p for p in pieces)
    state = TextState(tokenizer, stop=[])
    assert "".join(state.push(i) for i in ids) + state.flush() == text
    # byte-level: "✓" is 3 bytes; feed its bytes' tokens one by one
    check = tokenizer.encode("✓").ids
    state = TextState(tokenizer, stop=[])
    assert [state.push(i) for i in check][-1].endswith("✓")


def test_generate_text_and_stream_agree_with_stop_sequences(tokenizer):
    model = random_model()
    prompt = "def add(a, b):\n"
    free = generate_text(model, tokenizer, [prompt], SamplingParams(max_new_tokens=30))[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 30
    assert free.text == tokenizer.decode(free.token_ids, skip_special_tokens=False)
    stop = free.text[len(free.text) // 2 :][:3]  # a piece of what greedy produces anyway
    params = SamplingParams(max_new_tokens=30, stop=[stop])
    cut = generate_text(model, tokenizer, [prompt, "import os"], params)
    assert cut[0].finish_reason == "stop" and cut[0].text == free.text[: free.text.index(stop)]
    pieces = list(stream(model, tokenizer, prompt, params))
    assert "".join(p.text for p in pieces) == cut[0].text
    assert [p.finish_reason for p in pieces[:-1]] == [None] * (len(pieces) - 1)
    assert pieces[-1].finish_reason == "stop" and [p.token_id for p in pieces] == cut[0].token_ids
    assert all(p.logprob <= 0 for p in pieces)


def test_stream_ends_on_eos_and_on_length(tokenizer):
    model = random_model()
    ids = tokenizer.encode("class Stack:").ids
    free = generate(model, [ids], SamplingParams(max_new_tokens=12))[0]
    pieces = list(stream(model, tokenizer, ids, SamplingParams(max_new_tokens=12), stop_token_ids=[free[4]]))
    assert [p.token_id for p in pieces] == free[: free.index(free[4]) + 1]
    assert pieces[-1].finish_reason == "eos"
    assert "".join(p.text for p in pieces) == tokenizer.decode(
        free[: free.index(free[4])], skip_special_tokens=False
    )
    pieces = list(stream(model, tokenizer, ids, SamplingParams(max_new_tokens=12)))
    assert len(pieces) == 12 and pieces[-1].finish_reason == "length"
    assert "".join(p.text for p in pieces) == tokenizer.decode(free, skip_special_tokens=False)


def test_tiny_top_p_keeps_the_most_likely_token():
    """Found by fuzzing the server: top_p = 1e-300 is 0 in float32 and dropped every token (NaN)."""
    import torch

    from stackcoder.model.generate import SamplingParams, sample

    logits = torch.randn(3, 50) * 30
    tokens, _ = sample(
        logits, SamplingParams(temperature=0.7, top_p=1e-300), torch.Generator().manual_seed(0)
    )
    assert torch.equal(tokens, logits.argmax(-1))
