"""Where completions come from: a local checkpoint (`--model DIR`), or any server speaking TGI's or
OpenAI's completion shape (`--server URL`: ours, TGI, vLLM), so a released StarCoder2 on a GPU server
can be measured from here. Prompts are text; FIM and repository prompts spell the special tokens
(``<fim_prefix>`` …), which every StarCoder2 tokenizer and server turns back into single tokens."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field

from stackcoder.errors import UserError


@dataclass
class Sampling:
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 0.95
    stop: list[str] = field(default_factory=list)
    seed: int = 0


class LocalModel:
    """Batched generation with stackcoder's own StarCoder2 (any HF-layout checkpoint)."""

    def __init__(
        self,
        path: str,
        device: str = "auto",
        batch_size: int = 8,
        quantize: str | None = None,
        adapter: str | None = None,
    ):
        import torch

        from stackcoder.model.hf import load_model, pick_device
        from stackcoder.tokenizer.files import load_tokenizer, stop_token_ids

        self.device = pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else None  # quantized: bf16 anyway
        self.model = load_model(path, dtype=dtype, device=self.device, quantize=quantize)
        if adapter:  # a LoRA adapter (stackcoder finetune): merged, or beside quantized weights
            from stackcoder.model.lora import apply_adapter

            self.model = apply_adapter(self.model, adapter)
        self.tokenizer = load_tokenizer(path)
        self.batch_size = batch_size
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.name = path if quantize is None else f"{path} ({quantize})"
        self.name += f" + {adapter}" if adapter else ""
        self.context = self.model.config.max_position_embeddings

    def complete(self, prompts: list[str], s: Sampling) -> list[str]:
        from stackcoder.model.generate import SamplingParams, generate_text
        from stackcoder.tokenizer.files import encode

        out: list[str] = []
        room = max(1, self.context - s.max_new_tokens)
        # a prompt longer than the context keeps its end (the part next to what is generated)
        encoded = [encode(self.tokenizer, p)[-room:] for p in prompts]
        for start in range(0, len(encoded), self.batch_size):
            batch = encoded[start : start + self.batch_size]
            params = SamplingParams(
                max_new_tokens=s.max_new_tokens,
                temperature=s.temperature,
                top_p=s.top_p if s.temperature > 0 else 1.0,
                stop=s.stop,
                seed=s.seed + start,
            )
            out += [c.text for c in generate_text(self.model, self.tokenizer, batch, params, self.stop_ids)]
        return out


class ServerModel:
    """Requests to a completion server, ``concurrency`` at a time (a batching server batches them)."""

    def __init__(
        self,
        url: str,
        api: str = "auto",
        concurrency: int = 8,
        api_key: str | None = None,
        model: str | None = None,
    ):
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=600, headers=headers)
        self.concurrency = concurrency
        self.api = api if api != "auto" else self._detect()
        self.model = model
        self.name = self.url
        self.tokenizer = None
        self.context = None

    def _detect(self) -> str:
        import httpx

        for api, path in (("tgi", "/info"), ("openai", "/v1/models")):
            try:
                if self.client.get(self.url + path).status_code == 200:
                    return api
            except httpx.HTTPError as e:
                raise UserError(f"{self.url}: cannot reach the server ({e})") from None
        raise UserError(f"{self.url}: neither TGI's /info nor OpenAI's /v1/models answers; pass --api")

    def _one(self, prompt: str, s: Sampling, k: int) -> str:
        if self.api == "tgi":
            params = {"max_new_tokens": s.max_new_tokens, "stop": s.stop[:4], "seed": s.seed + k}
            params |= (
                {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p}
                if s.temperature > 0
                else {}
            )
            r = self.client.post(self.url + "/generate", json={"inputs": prompt, "parameters": params})
            key = "generated_text"
        else:
            body = {
                "prompt": prompt,
                "max_tokens": s.max_new_tokens,
                "temperature": s.temperature,
                "top_p": s.top_p,
            }
            body |= {"stop": s.stop[:4], "seed": s.seed + k} | ({"model": self.model} if self.model else {})
            r = self.client.post(self.url + "/v1/completions", json=body)
            key = None
        if r.status_code != 200:
            raise UserError(f"{self.url}: HTTP {r.status_code}: {r.text[:300]}")
        data = r.json()
        return data[key] if key else data["choices"][0]["text"]

    def complete(self, prompts: list[str], s: Sampling) -> list[str]:
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda kp: self._one(kp[1], s, kp[0]), enumerate(prompts)))


Backend = LocalModel | ServerModel  # where completions come from


def open_backend(model: str | None, server: str | None, **kw) -> Backend:
    if (model is None) == (server is None):
        raise UserError("give exactly one of --model DIR or --server URL")
    if server is not None and kw.get("quantize"):
        raise UserError("--quantize applies to --model DIR; a server quantizes its own model")
    if server is not None and kw.get("adapter"):
        raise UserError("--adapter applies to --model DIR; start the server with --adapter instead")
    if model is not None:
        return LocalModel(
            model,
            device=kw.get("device", "auto"),
            batch_size=kw.get("batch_size", 8),
            quantize=kw.get("quantize"),
            adapter=kw.get("adapter"),
        )
    return ServerModel(
        server, kw.get("api", "auto"), kw.get("concurrency", 8), kw.get("api_key"), kw.get("model_name")
    )
