"""The generation layer: one interface over transformers, vLLM and OpenAI-compatible servers."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
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
    # the n samples share one prefill of their prompt: greedy samples equal the single-row answer
    greedy = backend.generate(convs[:2], n=3, temperature=0, max_new_tokens=4)
    assert greedy == [[a] * 3 for [a] in single.generate(convs[:2], temperature=0, max_new_tokens=4)]


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
    """A minimal OpenAI-compatible chat completions server for the tests.

    ``fail_first`` requests get HTTP 503; ``max_choices`` caps the choices of an answer (``transformers
    serve`` ignores ``n``); ``refuse_grammar`` answers a request with a grammar field HTTP 422, as
    ``transformers serve`` does. Bodies and headers of every request are kept, in arrival order.
    """

    def __init__(self, fail_first: int = 0, max_choices: int | None = None, refuse_grammar: bool = False):
        self.requests = []
        self.headers = []
        self.fail_first = fail_first
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, payload: dict | None = None):
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    return self.answer(404)
                with lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(server.requests)
                if n <= server.fail_first:
                    return self.answer(503)
                grammar = {"structured_outputs", "guided_grammar", "ebnf"} & body.keys()
                if refuse_grammar and grammar:
                    return self.answer(422, {"detail": f"Unexpected fields in the request: {grammar}"})
                k = 2 + n % 4
                content = f"<variant>x**{k}</variant>\n<variant>sin({k}*x)</variant>\n<variant>?? bad ((</variant>"
                stop = (body.get("stop") or [None])[0]
                count = min(body.get("n", 1), max_choices or body.get("n", 1))
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": content + (f" #{i}" if i else "")},
                        "finish_reason": "stop",
                        "stop_reason": stop,  # vLLM names the stop string that ended the text (and drops it)
                    }
                    for i in range(count)
                ]
                payload = {"id": f"c{n}", "object": "chat.completion", "model": body["model"], "choices": choices}
                self.answer(200, payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# The client side of the tests that need huggingface_hub online: conftest sets HF_HUB_OFFLINE=1 for
# this process, and huggingface_hub reads it once, at import. HF_TOKEN is set so that a test sees
# whether the Hub token would reach the server.
CLIENT_SCRIPT = """
import json, sys
from ladder_hf.generation import OpenAIBackend
args = json.loads(sys.argv[1])
backend = OpenAIBackend(args.pop("base_url"), args.pop("model"), **args.pop("init"))
out = backend.generate([[{"role": "user", "content": c}] for c in args.pop("prompts")], **args)
print(json.dumps({"out": out, "refusals": backend.grammar_refusals, "refused": backend.grammar_refused}))
"""


def generate_online(base_url: str, model: str, prompts: list[str], init: dict | None = None, **kwargs) -> dict:
    """``OpenAIBackend(...).generate`` in a child process with huggingface_hub online (InferenceClient)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_not_for_this_server"}
    env.pop("OPENAI_API_KEY", None)
    args = {"base_url": base_url, "model": model, "prompts": prompts, "init": init or {}, **kwargs}
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, json.dumps(args)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


def test_openai_backend_tops_up_when_the_server_ignores_n():
    with ChatServer(max_choices=1) as server:
        backend = OpenAIBackend(server.url, "local-model", max_workers=2)
        out = backend.generate([[{"role": "user", "content": "a"}]] * 2, n=3, max_new_tokens=4, seed=10)
    assert [len(o) for o in out] == [3, 3] and all(out[0] + out[1])
    # per conversation: n=3, then 2, then 1, each with a seed of its own
    assert sorted((r["seed"], r["n"]) for r in server.requests) == sorted(
        (seed + OpenAIBackend.TOPUP_SEED_STRIDE * k, 3 - k) for seed in (10, 11) for k in range(3)
    )


def test_openai_backend_goes_through_inference_client():
    """Online, requests are huggingface_hub's; the Hub token stays home; a grammar refusal falls back."""
    with ChatServer(fail_first=1, max_choices=1, refuse_grammar=True) as server:
        plain = generate_online(server.url, "local-model", ["a"], n=2, stop=["</answer>"], seed=0, max_new_tokens=5)
        sent = len(server.requests)
        keyed = generate_online(
            server.url, "local-model", ["b", "c"], init={"api_key": "sk-local", "max_workers": 1}, grammar='start: "x"'
        )
    assert [len(o) for o in plain["out"]] == [2] and all(t.endswith("</answer>") for t in plain["out"][0])
    assert server.requests[0]["stop"] == ["</answer>"] and server.requests[0]["stream"] is False  # 503, retried
    assert all("hf_hub" in h["user-agent"] and "authorization" not in h for h in server.headers[:sent])
    assert all(h["authorization"] == "Bearer sk-local" for h in server.headers[sent:])
    # first request: grammar in extra_body, refused (422), sent again without; second: without at once
    assert ["structured_outputs" in r for r in server.requests[sent:]] == [True, False, False]
    assert server.requests[sent]["structured_outputs"] == {"grammar": 'start: "x"'}
    assert keyed["refusals"] == 2 and keyed["refused"].startswith("HTTP 422: ") and "Unexpected" in keyed["refused"]
    assert [len(o) for o in keyed["out"]] == [1, 1]


def serving_extra_missing() -> str | None:
    """Why `transformers serve` cannot start here (the `serving` extra is not installed), or None."""
    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs `pip install 'ladder-hf[serving]'` for `transformers serve` ({', '.join(missing)} missing)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(serving_extra_missing() is not None, reason=str(serving_extra_missing()))
def test_openai_backend_against_transformers_serve(tmp_path):
    """A real OpenAI-compatible server: `transformers serve` with the embedded model, on 127.0.0.1."""
    from ladder_hf.models import default_model_path

    model = default_model_path()  # the server is pinned to this name: requests must carry it
    port = free_port()
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--device", "cpu", "--log-level", "warning"]
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if json.load(resp).get("status") == "ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "transformers serve did not answer /health in 300 s"
            time.sleep(1)
        prompts = ["What is 2+2?", "Name one colour."]
        # Offline in this process: the requests transport; online in a child: InferenceClient.
        offline = OpenAIBackend(f"{url}/v1", model, max_workers=2)
        greedy = offline.generate([[{"role": "user", "content": p}] for p in prompts], temperature=0, max_new_tokens=12)
        online = generate_online(
            f"{url}/v1", model, prompts, n=2, temperature=[0, 0.7], max_new_tokens=12, stop=["."], seed=0
        )
        # transformers serve answers 422 "Unexpected fields" to a grammar: refused, then unconstrained
        constrained = OpenAIBackend(f"{url}/v1", model, max_workers=1)
        question = [[{"role": "user", "content": prompts[0]}]]
        fallback = constrained.generate(question, max_new_tokens=8, grammar='start: "4"')
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert all(len(o) == 1 and o[0].strip() for o in greedy)
    assert [len(o) for o in online["out"]] == [2, 2]  # the server ignores n: topped up
    assert online["out"][0][0] == online["out"][0][1] and online["out"][0][0].strip()  # greedy twice, same text
    assert all("." not in t[:-1] for texts in online["out"] for t in texts)  # cut at the first stop string
    assert online["out"][0][0] == cut_at_stop(greedy[0][0], ["."])  # greedy is greedy on both transports
    assert constrained.grammar_refusals == 1 and constrained.grammar_refused.startswith("HTTP 422")
    assert len(fallback[0]) == 1 and fallback[0][0].strip()
