"""The generation layer: one interface over transformers, vLLM and OpenAI-compatible servers."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ladder_hf.generation import (
    OpenAIBackend,
    TransformersBackend,
    VLLMBackend,
    cut_at_stop,
    load_backend,
    per_row,
    per_row_temperature_processor,
)


def testper_row_temperature_processor():
    import torch

    scores = torch.tensor([[2.0, 4.0], [2.0, 4.0]])
    out = per_row_temperature_processor([0.5, 2.0])(None, scores)
    assert torch.allclose(out, torch.tensor([[4.0, 8.0], [1.0, 2.0]]))


def test_per_row_and_cut_at_stop():
    assert per_row(0.7, 3) == [0.7, 0.7, 0.7]
    with pytest.raises(ValueError, match="2 temperatures for 3"):
        per_row([1.0, 1.0], 3)
    assert cut_at_stop("a <answer>x</answer> junk </answer>", ["</answer>"]) == "a <answer>x</answer>"
    assert cut_at_stop("no stop here", ["</answer>", "</ANSWER>"]) == "no stop here"


def test_transformers_backend_batched_generation(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, batch_size=3, seed=0)
    convs = [[{"role": "user", "content": "integrate " + "x" * (i * 7 + 1)}] for i in range(5)]
    outs = backend.generate(convs, temperature=[0.8, 1.0, 1.2, 1.4, 0.8], max_new_tokens=4)
    assert len(outs) == 5 and all(len(o) == 1 and isinstance(o[0], str) for o in outs)
    # greedy: a prompt's result does not depend on its batch neighbours or on the batch size
    single = TransformersBackend(tiny_model_dir, batch_size=1)
    assert backend.generate(convs[:3], temperature=0, max_new_tokens=4) == single.generate(
        convs[:3], temperature=0, max_new_tokens=4
    )
    # n samples per conversation; a per-call seed makes a call repeatable
    first = backend.generate(convs[:2], n=3, max_new_tokens=4, seed=7)
    assert [len(o) for o in first] == [3, 3]
    assert backend.generate(convs[:2], n=3, max_new_tokens=4, seed=7) == first


def test_transformers_backend_restores_an_in_memory_model(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    tokenizer.padding_side = "right"
    backend = TransformersBackend(model=model, tokenizer=tokenizer, batch_size=2)
    assert backend.model is model  # nothing copied: the policy being trained is sampled as it is
    backend.generate([[{"role": "user", "content": "hi"}]], temperature=0, max_new_tokens=2)
    assert model.training and tokenizer.padding_side == "right"
    model.eval()


def test_transformers_backend_stops_at_the_stop_string(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, batch_size=2)
    convs = [[{"role": "user", "content": "integrate x"}]]
    free = backend.generate(convs, temperature=0, max_new_tokens=12)[0][0]
    stop = free[2:6]  # a string the model writes greedily: generation must end early
    stopped = backend.generate(convs, temperature=0, max_new_tokens=12, stop=[stop])[0][0]
    assert free.startswith(stopped) and len(stopped) < len(free)


@pytest.mark.slow
def test_transformers_backend_keeps_the_stop_string_with_smollm2():
    from ladder_hf.problems import build_messages

    backend = TransformersBackend(batch_size=2)
    convs = [build_messages({"integrand": "x**3", "lower": "", "upper": ""}, "few_shot")]
    free = backend.generate(convs, temperature=0, max_new_tokens=48)[0][0]
    assert "</answer>" in free  # the few-shot turns teach the tags
    stopped = backend.generate(convs, temperature=0, max_new_tokens=48, stop=["</answer>"])[0][0]
    assert stopped.endswith("</answer>") and stopped == cut_at_stop(free, ["</answer>"])


def test_vllm_backend_clear_error_without_vllm():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; this test covers the missing-vllm message")
    with pytest.raises(ImportError, match=r"pip install 'ladder-hf\[vllm\]'"):
        VLLMBackend("some/model")


def test_load_backend_names():
    assert load_backend("openai", "m", base_url="http://127.0.0.1:9/v1").model_name == "m"
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend("tgi", "m")
    with pytest.raises(ValueError, match="needs base_url"):
        load_backend("openai", "m")


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible backend against a server on 127.0.0.1


class ChatServer:
    """A minimal OpenAI-compatible chat completions server for the tests."""

    def __init__(self, fail_first: int = 0):
        self.requests = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                with threading.Lock():
                    server.requests.append(body)
                    n = len(server.requests)
                if n <= server.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                k = 2 + n % 4
                content = f"<variant>x**{k}</variant>\n<variant>sin({k}*x)</variant>\n<variant>?? bad ((</variant>"
                stop = (body.get("stop") or [None])[0]
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": content + (f" #{i}" if i else "")},
                        "finish_reason": "stop",
                        "stop_reason": stop,  # vLLM names the stop string that ended the text (and drops it)
                    }
                    for i in range(body.get("n", 1))
                ]
                payload = {"id": f"c{n}", "object": "chat.completion", "model": body["model"], "choices": choices}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_backend_request_and_samples():
    with ChatServer() as server:
        backend = OpenAIBackend(server.url, "local-model", max_workers=2)
        convs = [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
        out = backend.generate(convs, n=2, temperature=[0.5, 1.5], max_new_tokens=9, stop=["</answer>"], seed=3)
    assert [len(o) for o in out] == [2, 2]
    assert all(text.endswith("</answer>") for texts in out for text in texts)  # the stop string is put back
    assert out[0][1].endswith("#1</answer>")
    body = sorted(server.requests, key=lambda r: r["temperature"])
    assert [r["temperature"] for r in body] == [0.5, 1.5] and {r["seed"] for r in body} == {3, 4}
    assert all(r["n"] == 2 and r["max_tokens"] == 9 and r["stop"] == ["</answer>"] for r in body)


def test_openai_backend_reports_http_errors():
    class Bad(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "bad model"}')

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Bad)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        backend = OpenAIBackend(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "m", retries=0)
        with pytest.raises(RuntimeError, match="HTTP 400"):
            backend.generate([[{"role": "user", "content": "hi"}]], max_new_tokens=8)
    finally:
        httpd.shutdown()
        httpd.server_close()
