"""Prefix caching (issue 14): the engine's completions, greedy and seeded sampling, are the same with the
cache on and off for what editors send (the same window twice, a one-token edit near the end, a
longer and a shorter prompt, several requests at once), with sliding windows far smaller than the
prompt; the reused keys and values give the cold prefill's logits; the radix tree shares prefixes,
stays within its bytes and evicts the least recently used prompt first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer

from stackcoder.model import Starcoder2, get_size
from stackcoder.model.generate import SamplingParams, generate
from stackcoder.serve.engine import Engine, SlotCache
from stackcoder.serve.prefix_cache import PrefillCache, PrefixCache

TOKENIZER = Path(__file__).parents[1] / "fixtures" / "model" / "tokenizer.json"
GREEDY = SamplingParams(max_new_tokens=12)
SAMPLED = SamplingParams(max_new_tokens=12, temperature=0.8, top_p=0.95, seed=7)


def random_model(window: int | None) -> Starcoder2:
    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=400, max_position_embeddings=512, sliding_window=window))
    with torch.no_grad():  # spread-out logits, as the serve checkpoint: outputs depend on the prompt
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_file(str(TOKENIZER))


@pytest.fixture(scope="module")
def code(tok) -> list[int]:
    """Real code as the prompt material (this repository's engine), ~1,000 tokens of it."""
    import stackcoder.serve.engine as engine

    return tok.encode(Path(engine.__file__).read_text(), add_special_tokens=False).ids[:1000]


def complete(engine: Engine, prompts: list[list[int]], params: list[SamplingParams]) -> list[list[int]]:
    """Submit all prompts at once (they are admitted together) and collect each one's tokens."""

    async def run() -> list[list[int]]:
        handles = [engine.submit(p, sp, timeout_s=120) for p, sp in zip(prompts, params, strict=True)]
        out = []
        for h in handles:
            out.append([p.token_id async for p in h.pieces() if p.token_id >= 0 and p.finish_reason != "eos"])
        return out

    return asyncio.run(run())


def edits(code: list[int]) -> list[tuple[str, list[int]]]:
    """What an editor resends, in order: each prompt is compared with the cache holding the earlier ones."""
    window = code[:120]
    edited = window[:117] + [(window[117] + 1) % 400] + window[118:]  # one token near the end
    return [
        ("cold", window),
        ("same prompt twice", window),
        ("one-token edit near the end", edited),
        ("longer prompt extending a cached one", edited + code[120:160]),
        ("shorter than a cached one", edited[:100]),
        ("edit at the start", [(window[0] + 1) % 400, *window[1:]]),
    ]


@pytest.mark.parametrize("window", [32, 4, None])
@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_completions_are_the_same_with_and_without_the_cache(tok, code, window, params):
    model = random_model(window)
    cold = Engine(model, tok, max_batch=4, max_queue=8, max_len=512)
    warm = Engine(model, tok, max_batch=4, max_queue=8, max_len=512, prefix_cache_bytes=2**26)
    try:
        prefilled, lengths = [], []
        for name, prompt in edits(code):
            before = warm.prefilled_tokens
            assert complete(warm, [prompt], [params]) == complete(cold, [prompt], [params]), name
            prefilled.append(warm.prefilled_tokens - before)
            lengths.append(len(prompt))
        # what was prefilled: all of the first; one token of the same prompt (its logits start the
        # completion); from the edit on; the extension; the last token; all of an edit at position 0
        assert prefilled == [120, 1, 3, 40, 1, 120]
        assert cold.prefilled_tokens == sum(lengths)
        assert cold.prefix_stats["hits"] == 0 and warm.prefix_stats["hits"] == 4
        if params is GREEDY:  # and the engine's (cold) prefill into a ring that wrapped is the library's
            window_ids = edits(code)[0][1]
            assert complete(cold, [window_ids], [params]) == generate(
                model, [window_ids], params, cold.stop_ids
            )
    finally:
        cold.shutdown()
        warm.shutdown()


def test_concurrent_requests_share_cached_prefixes(tok, code):
    """Requests admitted in the same iteration: each one's prompt is cached before the next is
    prefilled, so later ones reuse earlier ones; and a cached prompt in use by one request is
    reused by the next with the same prefix."""
    model = random_model(32)
    cold = Engine(model, tok, max_batch=3, max_queue=16, max_len=512)
    warm = Engine(model, tok, max_batch=3, max_queue=16, max_len=512, prefix_cache_bytes=2**26)
    base = code[:150]
    other = [(t + 1) % 400 for t in code[140:150]]  # differs from base from position 140 on
    unrelated = [(code[0] + 1) % 400, *code[401:500]]  # shares no first token with base
    prompts = [base, base[:140] + other, base, base + code[150:170], base[:90], unrelated]
    params = [GREEDY, SAMPLED, SAMPLED, GREEDY, GREEDY, SAMPLED]
    try:
        on, off = complete(warm, prompts, params), complete(cold, prompts, params)
        assert on == off
        assert sum(len(o) > 1 for o in on) >= 3  # not a comparison of empty completions
        assert warm.max_rows_seen > 1  # they were decoded together
        # prefilled: base, the 10 new tokens, 1, the 20 extending tokens, 1, the unrelated prompt
        assert warm.prefilled_tokens == 150 + 10 + 1 + 20 + 1 + 100
    finally:
        cold.shutdown()
        warm.shutdown()


@pytest.mark.parametrize("window", [5, 32, None])
def test_reused_keys_and_values_give_the_cold_prefill(code, window):
    """Logits of the last position and every key and value, warm vs cold, and the slot's ring after
    loading either, for reuse points before, inside and past the window (the ring wrapped)."""
    model = random_model(window)
    prompt = code[:90]
    cached = PrefixCache(2**26)
    with torch.inference_mode():
        first = PrefillCache(model, len(prompt))
        model(torch.tensor([prompt]), cache=first, logits_to_keep=1)
        cached.insert(prompt, first.k, first.v)
        for L in (1, 3, 40, 87, 89):
            new = prompt[:L] + [(t + 1) % 400 for t in prompt[L:]]
            runs = {}
            for reuse in (False, True):
                cache = PrefillCache(model, len(new))
                start = cached.fill(new, cache, limit=len(new) - 1) if reuse else 0
                logits, _ = model(torch.tensor([new[start:]]), cache=cache, logits_to_keep=1)
                slots = SlotCache(model, max_batch=2, max_len=512)
                slots.load(1, cache)
                runs[reuse] = (start, logits, cache.k, cache.v, slots.k[:, 1], slots.valid[1])
            assert runs[True][0] == L and runs[False][0] == 0
            for a, b in zip(runs[False][1:], runs[True][1:], strict=True):
                assert torch.allclose(a, b, atol=1e-5) if a.is_floating_point() else torch.equal(a, b)


def test_slot_ring_holds_each_position_at_its_column(code):
    model = random_model(8)
    with torch.inference_mode():
        cache = PrefillCache(model, 21)
        model(torch.tensor([code[:21]]), cache=cache, logits_to_keep=1)
    slots = SlotCache(model, max_batch=1, max_len=512)
    slots.load(0, cache)
    assert slots.capacity == 8 and int(slots.length[0]) == 21 and bool(slots.valid[0].all())
    for p in range(13, 21):  # the window's last 8 positions, position p at column p % 8
        assert torch.equal(slots.k[:, 0, :, p % 8], cache.k[:, :, p])


# ---- the radix tree on its own -----------------------------------------------------------------


def kv(ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(layers 2, n_kv 1, N, hd 2) keys and values that say which token at which position made them."""
    k = torch.tensor([[float(t), float(p)] for p, t in enumerate(ids)]).expand(2, 1, len(ids), 2)
    return k.contiguous(), -k.contiguous()


def lookup(tree: PrefixCache, ids: list[int]) -> tuple[int, torch.Tensor]:
    out = SimpleNamespace(k=torch.zeros(2, 1, len(ids), 2), v=torch.zeros(2, 1, len(ids), 2), start=0)
    return tree.fill(ids, out, limit=len(ids)), out.k


ENTRY_BYTES = 2 * 2 * 1 * 2 * 4  # k and v, 2 layers, 1 head, 2 dims, float32: per position


def test_tree_shares_prefixes_and_copies_the_right_positions():
    tree = PrefixCache(10**6)
    a, b = [1, 2, 3, 4, 5, 6], [1, 2, 3, 9, 9]
    tree.insert(a, *kv(a))
    tree.insert(b, *kv(b))  # splits a's edge after 3 tokens
    assert tree.tokens == 6 + 2 and tree.bytes == 8 * ENTRY_BYTES
    L, k = lookup(tree, [1, 2, 3, 9, 7])
    assert L == 4 and torch.equal(k[:, :, :4], kv(b)[0][:, :, :4]) and not k[:, :, 4:].any()
    L, k = lookup(tree, [1, 2, 3, 4, 5, 6, 7])
    assert L == 6 and torch.equal(k[:, :, :6], kv(a)[0])
    assert lookup(tree, [2, 1])[0] == 0
    tree.insert([1, 2], *kv([1, 2]))  # already inside the tree: nothing new
    assert tree.tokens == 8 and tree.stats["hits"] == 2 and tree.stats["reused_tokens"] == 10


def test_tree_stays_within_its_bytes_least_recently_used_first():
    tree = PrefixCache(10 * ENTRY_BYTES)
    a, b, c = [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]
    tree.insert(a, *kv(a))
    tree.insert(b, *kv(b))
    assert lookup(tree, a)[0] == 4  # a is now used more recently than b
    tree.insert(c, *kv(c))
    assert tree.bytes <= tree.max_bytes and tree.tokens == 8
    assert lookup(tree, b)[0] == 0 and lookup(tree, a)[0] == 4 and lookup(tree, c)[0] == 4
    tree.insert(list(range(20, 31)), *kv(list(range(20, 31))))  # 11 positions: larger than the bound
    assert tree.tokens == 8  # not kept, and nothing evicted for it


def test_disabled_tree_keeps_nothing():
    tree = PrefixCache(0)
    tree.insert([1, 2, 3], *kv([1, 2, 3]))
    assert lookup(tree, [1, 2, 3])[0] == 0 and tree.bytes == 0 and tree.stats["lookups"] == 1


@pytest.mark.parametrize("mb", [0, 16])
def test_server_setting_turns_reuse_on_and_off(serve_checkpoint, mb):
    """`serve --prefix-cache-mb`: an editor's FIM request resent with one more character typed gives
    the answer a cold server gives, and /health counts the tokens reused (none at 0 MB)."""
    from fastapi.testclient import TestClient

    from stackcoder.serve.app import create_app
    from stackcoder.serve.config import ServeConfig

    prefix, suffix = "def area(r):\n    pi = 3.14159\n    return pi * r", "\n\nprint(area(2))\n"
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint), prefix_cache_mb=mb))) as c:
        texts = []
        for typed in ("", " *"):
            body = {"prompt": prefix + typed, "suffix": suffix, "max_tokens": 8, "temperature": 0}
            texts.append(c.post("/v1/completions", json=body).json()["choices"][0]["text"])
        health = c.get("/health").json()
        ids = [c.app.state.service.fim_prompt(prefix + typed, suffix) for typed in ("", " *")]
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint), prefix_cache_mb=0))) as c:
        body = {"prompt": prefix + " *", "suffix": suffix, "max_tokens": 8, "temperature": 0}
        assert c.post("/v1/completions", json=body).json()["choices"][0]["text"] == texts[1]
    same = next((i for i, (a, b) in enumerate(zip(*ids, strict=False)) if a != b), len(ids[0]))
    assert same > len(ids[1]) // 2  # SPM: the suffix and the prefix up to the typed characters
    assert health["reused_tokens"] == (same if mb else 0)
    assert health["prefilled_tokens"] == len(ids[0]) + len(ids[1]) - health["reused_tokens"]
    assert (health["prefix_cache_bytes"] > 0) == bool(mb)
