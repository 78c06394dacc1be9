"""Real clients against the real server on a real port: the `openai` package (completions with
`suffix`, streaming), `huggingface_hub`'s InferenceClient (TGI shape, streaming), and a fuzz run of
schemathesis over our own OpenAPI schema (no 5xx, responses match the schema)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(live_server):
    return live_server


def test_openai_client(server):
    openai = pytest.importorskip("openai")
    url, app = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    done = client.completions.create(
        model="m", prompt="def f(x):\n    ", suffix="\n    return y\n", max_tokens=12, temperature=0
    )
    assert done.choices[0].finish_reason in ("stop", "length") and isinstance(done.choices[0].text, str)
    chunks = list(
        client.completions.create(
            model="m",
            prompt="def f(x):\n    ",
            suffix="\n    return y\n",
            max_tokens=12,
            temperature=0,
            stream=True,
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == done.choices[0].text
    assert chunks[-1].choices[0].finish_reason == done.choices[0].finish_reason
    assert [m.id for m in client.models.list()] == [app.state.service.model_id]


def test_huggingface_hub_inference_client(server):
    hub = pytest.importorskip("huggingface_hub")
    url, _ = server
    client = hub.InferenceClient(model=url)
    text = client.text_generation("def add(a, b):", max_new_tokens=10)
    assert isinstance(text, str)
    detailed = client.text_generation("def add(a, b):", max_new_tokens=10, details=True)
    assert detailed.generated_text == text and detailed.details.generated_tokens <= 10
    streamed = list(client.text_generation("def add(a, b):", max_new_tokens=10, stream=True))
    assert "".join(streamed) == text
    last = list(client.text_generation("def add(a, b):", max_new_tokens=10, stream=True, details=True))[-1]
    assert last.details.finish_reason in ("length", "eos_token")


@pytest.mark.slow
def test_fuzz_against_our_own_schema(server):
    """Schemathesis generates requests from /openapi.json (valid and not): never a 5xx, and every
    response fits the schema's declared codes and bodies."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    url, _ = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures = []
    for op in schema.get_all_operations():
        operation = op.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case) -> None:  # noqa: ANN001
            if case.body is not None and isinstance(case.body, dict):
                params = case.body.get("parameters")
                # keep fuzzing cheap: the point is validation, not long generations
                for key, where in (
                    ("max_new_tokens", params),
                    ("max_tokens", case.body),
                    ("n_predict", case.body),
                ):
                    if isinstance(where, dict) and isinstance(where.get(key), int) and where[key] > 8:
                        where[key] = 8
            response = case.call(base_url=url, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.path} {case.body!r} -> {response.status_code} {response.text[:200]}"
                )

        check()
    assert failures == []
