"""Grammar-constrained variant writing: the grammar, and what each backend does with it."""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ladder_hf.generation import OpenAIBackend, TransformersBackend, VLLMBackend
from ladder_hf.variants.base import parse_integrand
from ladder_hf.variants.generators import ModelVariantGenerator, extract_variants, make_generator
from ladder_hf.variants.grammar import lark_to_gbnf, variant_grammar, variant_rules
from ladder_hf.verifier.parsing import MathParseError, parse_expression

_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|\(|\)\??|\||\?|[a-z][a-z0-9]*')


def _sample(rules: dict, name: str, rng: random.Random) -> str:
    """One random string of ``name``: picks alternatives and optional groups at random."""
    body = rng.choice(rules[name])
    return _seq(rules, _ITEM.findall(body), rng)


def _seq(rules, items, rng):
    out, i = [], 0
    while i < len(items):
        item = items[i]
        if item == "(":  # a group, optional when it closes with ")?"
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1, ")?": -1}.get(items[j], 0)
                j += 1
            optional = items[j - 1] == ")?"
            if not optional or rng.random() < 0.6:
                out.append(_seq(rules, items[i + 1 : j - 1], rng))
            i = j
            continue
        optional = i + 1 < len(items) and items[i + 1] == "?"
        if not optional or rng.random() < 0.5:
            out.append(json.loads(item) if item.startswith('"') else _sample(rules, item, rng))
        i += 2 if optional else 1
    return "".join(out)


def test_strings_of_the_variant_grammar_parse():
    rules = variant_rules(3)
    rng = random.Random(0)
    texts = [_sample(rules, "start", rng) for _ in range(300)]
    variants = [v for t in texts for v in extract_variants(t, limit=3)]
    assert len(variants) >= 300 and max(len(v) for v in variants) > 40  # deep and long ones were drawn
    refused = []
    for v in variants:
        try:
            # the verifier's grammar, bounds and exact folding; parse_integrand adds the (slow) sympy build
            parse_expression(v)
        except ValueError as err:
            refused.append((v, str(err)))
    # syntax is guaranteed; only 1/0 after folding, e.g. (1 - 1)**(-2), or a maximal string is refused
    known = ("not a finite expression", "too long (more than 400 tokens)")
    assert all(msg in known for _, msg in refused), refused[:3]
    assert len(refused) <= 0.02 * len(variants), refused[:3]


def test_variant_grammar_is_bounded_and_rendered_in_both_notations():
    lark = variant_grammar(2, max_depth=1)
    assert lark.startswith("start: START\nSTART: VARIANT")
    assert '"(" SUM2' not in lark and 'BASE1: "x" | "pi" | "E"\n' in lark  # no brackets below max_depth
    gbnf = variant_grammar(2, max_depth=1, notation="gbnf")
    assert gbnf.startswith('root ::= variant ("\\n" variant)?')
    assert "::=" in lark_to_gbnf(lark) and lark_to_gbnf(lark).startswith("root ::= start\nstart ::= variant")
    with pytest.raises(ValueError, match="none of the functions"):
        variant_rules(1, functions=["Integral"])
    with pytest.raises(ValueError):
        lark_to_gbnf("start: A\n%ignore WS\n")


def test_llguidance_accepts_the_grammar_on_smollm2s_tokenizer(tiny_model):
    import llguidance
    import llguidance.hf

    _, tokenizer = tiny_model
    lltok = llguidance.hf.from_tokenizer(tokenizer)
    grammar = llguidance.LLMatcher.grammar_from_lark(variant_grammar(2))
    good = tokenizer("<variant>x**2*exp(x) - sin(3*x)/2</variant>\n<variant>sqrt(x + 4)</variant>")["input_ids"]
    matcher = llguidance.LLMatcher(lltok, grammar)
    assert not matcher.is_error() and matcher.consume_tokens(good) and matcher.is_accepting()
    bad = tokenizer("<variant>y**2</variant>")["input_ids"]
    matcher = llguidance.LLMatcher(lltok, grammar)
    assert matcher.validate_tokens(bad) < len(bad)  # "y" is not in the language


def test_transformers_backend_constrained_outputs_all_parse(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, batch_size=4, seed=0)
    convs = [[{"role": "user", "content": f"Write variants of x**{k}*sin(x)"}] for k in range(3)]
    grammar = variant_grammar(2, max_depth=2, max_terms=2, max_factors=2)
    out = backend.generate(convs, n=2, max_new_tokens=160, temperature=[0.0, 1.0, 1.4], grammar=grammar)
    texts = [t for row in out for t in row]
    # a random tiny model writes anything it can; the grammar leaves it only tagged, parsable variants
    assert all(t.startswith("<variant>") for t in texts)
    variants = [v for t in texts for v in extract_variants(t)]
    assert len(variants) >= len(texts)
    complete = [t for t in texts if t.endswith("</variant>")]
    assert complete  # some rows finished inside max_new_tokens
    for t in complete:
        assert re.fullmatch(r"<variant>[^\n]*</variant>(\n<variant>[^\n]*</variant>)?", t)
        for v in extract_variants(t):
            try:
                parse_integrand(v)
            except MathParseError as err:
                # the grammar fixes the syntax, not the value: `log(sqrt(-pi + pi))` is well formed
                assert str(err) == "not a finite expression", v
    unconstrained = backend.generate(convs[:1], max_new_tokens=16, temperature=1.0)
    assert not unconstrained[0][0].startswith("<variant>")  # the constraint, not the model, did it


def test_missing_llguidance_is_a_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "llguidance", None)
    backend = TransformersBackend(tiny_model_dir)
    with pytest.raises(ImportError, match=r"ladder-hf\[constrained\].*--no-constrained"):
        backend.generate([[{"role": "user", "content": "hi"}]], max_new_tokens=4, grammar=variant_grammar(1))


def _fake_vllm(monkeypatch, structured: bool):
    vllm = types.ModuleType("vllm")
    sampling = types.ModuleType("vllm.sampling_params")

    class Params:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    vllm.SamplingParams = Params
    if structured:
        sampling.StructuredOutputsParams = type("StructuredOutputsParams", (Params,), {})
    else:
        sampling.GuidedDecodingParams = type("GuidedDecodingParams", (Params,), {})
    vllm.sampling_params = sampling
    vllm.LLM = lambda **kw: types.SimpleNamespace(kwargs=kw)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return VLLMBackend("some/model")


@pytest.mark.parametrize("structured", [True, False])
def test_vllm_sampling_params_carry_the_grammar(monkeypatch, structured):
    backend = _fake_vllm(monkeypatch, structured)
    grammar = variant_grammar(3)
    params = backend.sampling_params(2, 64, 0.8, 0.95, ["</s>"], 7, grammar)
    if structured:  # vLLM >= 0.10.2
        assert type(params.structured_outputs).__name__ == "StructuredOutputsParams"
        assert params.structured_outputs.grammar == grammar and not hasattr(params, "guided_decoding")
    else:
        assert params.guided_decoding.grammar == grammar and not hasattr(params, "structured_outputs")
    assert params.n == 2 and params.max_tokens == 64 and params.seed == 7
    plain = backend.sampling_params(1, 8, 1.0, 1.0, [], None)
    assert not hasattr(plain, "structured_outputs") and not hasattr(plain, "guided_decoding")


class GrammarServer:
    """A chat completions server that answers in grammar when asked, or refuses grammars with HTTP 400."""

    def __init__(self, refuse: bool):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                constrained = any(k in body for k in OpenAIBackend.GRAMMAR_FIELDS)
                if refuse and constrained:
                    data, status = b'{"error": {"message": "unknown field structured_outputs"}}', 400
                else:
                    text = "<variant>x*exp(x)</variant>" if constrained else "Sure! Here: x e to the x, roughly"
                    choices = [{"index": 0, "message": {"content": text}, "finish_reason": "stop"}]
                    data, status = json.dumps({"choices": choices}).encode(), 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("field", OpenAIBackend.GRAMMAR_FIELDS)
def test_openai_request_carries_the_grammar(field):
    grammar = variant_grammar(2)
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", grammar_field=field)
    body = backend.request([{"role": "user", "content": "hi"}], 1, 32, 1.0, 1.0, [], None, grammar)
    expected = {
        "structured_outputs": {"grammar": grammar},
        "guided_grammar": grammar,
        "ebnf": lark_to_gbnf(grammar),
    }[field]
    assert body[field] == expected
    assert not {*OpenAIBackend.GRAMMAR_FIELDS} - {field} & body.keys()
    assert "structured_outputs" not in backend.request([], 1, 8, 1.0, 1.0, [], None)
    with pytest.raises(ValueError, match="grammar_field"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", grammar_field="grammar")


def test_openai_server_refusing_the_grammar_falls_back_and_counts(caplog):
    with GrammarServer(refuse=True) as server:
        backend = OpenAIBackend(server.url, "m", max_workers=1, retries=0)
        gen = ModelVariantGenerator(backend, variants_per_prompt=2)
        with caplog.at_level("WARNING"):
            cands = gen.propose([{"id": "p", "integrand": "x**2*exp(x)"}], 4)[0]
    assert backend.grammar_refused.startswith("HTTP 400") and "refused the grammar" in caplog.text
    # first request: refused, then sent again without the grammar; second: sent without it at once
    assert ["structured_outputs" in r for r in server.requests] == [True, False, False]
    assert backend.grammar_refusals == 2
    assert len(cands) == 2 and all(c.expr is None and c.parse_error for c in cands)  # counted as unparsable


def test_openai_server_with_grammar_support():
    with GrammarServer(refuse=False) as server:
        backend = OpenAIBackend(server.url, "m", max_workers=1)
        cands = ModelVariantGenerator(backend, variants_per_prompt=2).propose([{"id": "p", "integrand": "x"}], 2)[0]
    assert backend.grammar_refusals == 0 and all("structured_outputs" in r for r in server.requests)
    assert [str(c.expr) for c in cands] == ["x*exp(x)"]  # one prompt, one variant in grammar


class RecordingBackend:
    model_name = "rec"

    def __init__(self):
        self.calls = []

    def generate(self, conversations, **kw):
        self.calls.append(kw)
        return [["<variant>sin(x)</variant>"] for _ in conversations]


def test_model_generator_constrains_by_default_and_can_switch_off():
    on, off = RecordingBackend(), RecordingBackend()
    ModelVariantGenerator(on, variants_per_prompt=3).propose([{"id": "p", "integrand": "x"}], 3)
    ModelVariantGenerator(off, variants_per_prompt=3, constrained=False).propose([{"id": "p", "integrand": "x"}], 3)
    assert on.calls[0]["grammar"] == variant_grammar(3)
    assert "grammar" not in off.calls[0]
    assert make_generator("model", backend=on).constrained
    assert not make_generator("model", backend=on, constrained=False).constrained


def test_cli_constrained_flags():
    from ladder_hf.variants.cli import build_parser

    base = ["generate", "--problems", "x", "--out", "o"]
    assert build_parser().parse_args(base).constrained is True
    args = build_parser().parse_args([*base, "--no-constrained", "--grammar-field", "ebnf"])
    assert args.constrained is False and args.grammar_field == "ebnf"


@pytest.mark.slow
def test_smollm2_constrained_variants_parse():
    """The embedded SmolLM2-135M-Instruct: unconstrained it writes prose, constrained >= 90% parse."""
    backend = TransformersBackend(batch_size=8, seed=0)
    gen = ModelVariantGenerator(backend, variants_per_prompt=3, max_new_tokens=128)
    cands = gen.propose([{"id": "a", "integrand": "x**3*sin(2*x)"}, {"id": "b", "integrand": "x**2*log(x)"}], 12)
    flat = [c for row in cands for c in row]
    assert len(flat) >= 12
    assert sum(c.expr is not None for c in flat) >= 0.9 * len(flat)
