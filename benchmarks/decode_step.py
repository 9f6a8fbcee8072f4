"""What one decoding step of the embedded model costs on this CPU, and what the cheaper variants would buy.

Decoding is most of a GRPO step here (``benchmarks/grpo_step.py``). This times one forward pass of a
decoding step (``--rows`` sequences, one new token each, a key/value cache of ``--context`` tokens), the
way ``generate`` runs it, in interleaved rounds so every variant sees the same machine, and prints medians
and the ratio of each variant to the baseline:

- ``baseline``: float32, transformers' ``DynamicCache`` (``torch.cat`` of the whole cache at every token);
- ``append``: a cache layer that writes the new token into spare room instead of concatenating;
- ``weight-major``: every ``nn.Linear`` computed as ``W @ x.T`` (MKL streams the weights differently for
  a few rows; faster in isolated matrix products on this machine);
- ``autocast-bf16`` and ``bf16`` (only on a CPU with native bf16: AVX512-BF16 or AMX): the float32 model
  under ``torch.autocast`` (what a ``bf16: true`` run did when sampling: every weight is cast at every
  product), and a copy whose weights are bf16 with PyTorch's SDPA attention (what the LADDER trainer sampled
  from in a bf16 CPU run until the grouped attention below, 2026-11-27);
- ``bf16-eager``: the bf16 copy with transformers' eager attention (SDPA's CPU kernel is slow in bf16 at
  these shapes), and ``bf16-grouped``: with eager attention that does not copy the key/value heads for
  each query head (``ladder_hf.models.grouped_eager_attention``), what a bf16 CPU run samples from now;
- ``int8``: ``torch.ao.quantization.quantize_dynamic`` (int8 weights, per channel, and int8 activations).
  It samples from another model, so the script also measures how far: it samples ``--sample-tokens``
  tokens per row from the int8 model on the few-shot prompt and scores them with the float32 model (and,
  as a control, the float32 model's own samples, whose gap must be 0). A GRPO loss would have to correct
  for the gap (PPO's ratio, clipped at 0.8-1.2).

It also times drawing one token per row from the softmax over the vocabulary, with ``torch.multinomial``
(what ``generate`` calls) and by inverse CDF (``ladder_hf.generation.inverse_cdf_sampling``, what our
generation uses), and profiles the baseline step (matrix products, attention, concatenation, the rest) and sets it
against the bandwidth floor: every decoded token reads all the weights once.

    python benchmarks/decode_step.py                  # 8 rows, 250-token cache, 12 rounds
    python benchmarks/decode_step.py --rounds 20 --rows 16
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
import warnings


def appending_layer_class():
    from transformers.cache_utils import DynamicLayer

    class AppendingLayer(DynamicLayer):
        """Keys and values are views of a buffer with room to grow; a new token writes one slot."""

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.keys = self._append("_key_buffer", self.keys, key_states)
            self.values = self._append("_value_buffer", self.values, value_states)
            return self.keys, self.values

        def _append(self, name, cached, new):
            length = cached.shape[-2] if cached.numel() else 0
            end = length + new.shape[-2]
            buffer = getattr(self, name, None)
            if buffer is None or buffer.shape[-2] < end or (length and cached.data_ptr() != buffer.data_ptr()):
                buffer = new.new_empty(*new.shape[:2], 2 * end, new.shape[-1])
                if length:
                    buffer[..., :length, :] = cached
                setattr(self, name, buffer)
            buffer[..., length:end, :] = new
            return buffer[..., :end, :]

    return AppendingLayer


def weight_major(module, x):

    rows = x.numel() // module.in_features
    out = (module.weight @ x.reshape(rows, module.in_features).T).T
    if module.bias is not None:
        out = out + module.bias
    return out.reshape(*x.shape[:-1], module.out_features)


def quantized_copy(model):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated; there is no CPU successor in torch
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def logp_gap(model, sampler, tokenizer, tokens: int, rows: int) -> dict[str, float]:
    """Sample from ``sampler``, score the samples with ``model``: per-token log-probability gaps."""
    import torch

    from ladder_hf.problems import build_messages

    problems = [{"integrand": "x**2*exp(x)", "lower": "", "upper": ""}, {"integrand": "sin(3*x) + 1/x"}]
    texts = [
        tokenizer.apply_chat_template(
            build_messages({"lower": "", "upper": "", **p}, "few_shot"), tokenize=False, add_generation_prompt=True
        )
        for p in problems
        for _ in range(rows // len(problems))
    ]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    with torch.no_grad():
        out = sampler.generate(
            **enc,
            max_new_tokens=tokens,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
        )
        completion = out.sequences[:, enc.input_ids.shape[1] :]
        sampled = torch.log_softmax(torch.stack(out.logits, 1).float(), -1).gather(-1, completion[..., None])[..., 0]
        # positions after a row's end of sequence are padding
        ended = (completion == tokenizer.eos_token_id).long().cumsum(-1)
        valid = (ended == 0) | ((ended == 1) & (completion == tokenizer.eos_token_id))
        mask = torch.cat([enc.attention_mask, valid.long()], 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
        logits = model(input_ids=out.sequences, attention_mask=mask, position_ids=positions).logits
        logits = logits[:, enc.input_ids.shape[1] - 1 : -1]
        reference = torch.log_softmax(logits.float(), -1).gather(-1, completion[..., None])[..., 0]
    gap = (reference - sampled)[valid]
    ratio = gap.exp()
    return {
        "tokens": int(valid.sum()),
        "mean_abs_logp_gap": gap.abs().mean().item(),
        "outside_clip": ((ratio < 0.8) | (ratio > 1.2)).float().mean().item(),
        "kl_estimate": (-gap).mean().item(),  # E_q[log q - log p] per token
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8, help="sequences decoded together (a GRPO step's completions)")
    parser.add_argument("--context", type=int, default=250, help="tokens already in the key/value cache")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds (the first two warm up)")
    parser.add_argument(
        "--sample-tokens", type=int, default=96, help="tokens per row for the int8 and bf16 gaps (0: skip)"
    )
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import DynamicCache

    from ladder_hf.generation import inverse_cdf_sampling
    from ladder_hf.models import bf16_copy, cpu_has_native_bf16, load_default_model, register_grouped_attention

    model, tokenizer = load_default_model()
    model.eval()
    int8 = quantized_copy(model)
    prompt = torch.randint(0, 1000, (args.rows, args.context))
    token = torch.randint(0, 1000, (args.rows, 1))

    def filled(target, cache):
        with torch.no_grad():
            target(input_ids=prompt, cache=cache, use_cache=True, logits_to_keep=1)
        return cache

    def appending_cache():
        cache, layer = DynamicCache(config=model.config), appending_layer_class()
        cache.layers = [layer() for _ in cache.layers]
        return cache

    caches = {
        "baseline": filled(model, DynamicCache(config=model.config)),
        "append": filled(model, appending_cache()),
        "weight-major": filled(model, DynamicCache(config=model.config)),
        "int8": filled(int8, DynamicCache(config=model.config)),
    }
    others = {"int8": int8}  # the variants that are another model than the float32 one
    if cpu_has_native_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            caches["autocast-bf16"] = filled(model, DynamicCache(config=model.config))
        # bf16-grouped is what the trainer samples from
        for name, attention in (
            ("bf16", "sdpa"),
            ("bf16-eager", "eager"),
            ("bf16-grouped", register_grouped_attention()),
        ):
            others[name] = bf16_copy(model)
            others[name].set_attn_implementation(attention)
            caches[name] = filled(others[name], DynamicCache(config=model.config))
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]

    def step(name, logits: list | None = None):
        target = others.get(name, model)
        if name == "weight-major":
            for module in linears:
                module.forward = functools.partial(weight_major, module)
        precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "autocast-bf16")
        try:
            start = time.perf_counter()
            with torch.no_grad(), precision:
                out = target(input_ids=token, cache=caches[name], use_cache=True, logits_to_keep=1)
            if logits is not None:
                logits.append(out.logits)
            return time.perf_counter() - start
        finally:
            caches[name].crop(-1)  # the cache keeps its length: every round times the same step
            for module in linears:
                vars(module).pop("forward", None)

    # the exact variants must compute what the baseline computes (int8 is another model)
    first: list = []
    for name in ("baseline", "append", "weight-major"):
        step(name, first)
    if not all(torch.allclose(first[0], other, atol=1e-3) for other in first[1:]):
        raise AssertionError("an exact variant's logits differ from the baseline's")
    timings = {name: [] for name in caches}
    for _ in range(args.rounds):
        for name in caches:
            timings[name].append(step(name))
    medians = {name: statistics.median(values[2:]) for name, values in timings.items()}

    probs = torch.softmax(torch.randn(args.rows, model.config.vocab_size) * 3, dim=-1)
    draws = {"multinomial": [], "inverse CDF": []}
    for _ in range(args.rounds * 5):
        for name, sampling in (("multinomial", contextlib.nullcontext), ("inverse CDF", inverse_cdf_sampling)):
            with sampling():
                start = time.perf_counter()
                torch.multinomial(probs, 1)
                draws[name].append(time.perf_counter() - start)
    draw_ms = {name: 1000 * statistics.median(values) for name, values in draws.items()}

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step("baseline")
    groups = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm"), "concatenation": ("aten::cat",)}
    spent = {key: 0.0 for key in (*groups, "attention", "rest")}
    for event in prof.key_averages():
        key = next((g for g, ops in groups.items() if event.key in ops), None)
        if key is None:
            key = "attention" if "scaled_dot_product" in event.key else "rest"
        spent[key] += event.self_cpu_time_total / 1e3 / 3

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    big = torch.ones(64 * 2**20)
    start = time.perf_counter()
    for _ in range(5):
        big.sum()
    read_gbs = 5 * big.numel() * 4 / (time.perf_counter() - start) / 1e9

    print(f"one decoding step: {args.rows} rows, {args.context}-token cache, medians of {args.rounds - 2} rounds")
    for name, value in medians.items():
        print(f"  {name:<13} {1000 * value:7.1f} ms   baseline / this: {medians['baseline'] / value:.2f}x")
    print(
        f"drawing a token for {args.rows} rows: torch.multinomial {draw_ms['multinomial']:.2f} ms, inverse CDF "
        f"{draw_ms['inverse CDF']:.2f} ms ({draw_ms['multinomial'] / draw_ms['inverse CDF']:.0f}x)"
    )
    print("baseline step, profiled (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()))
    print(
        f"bandwidth floor: {weights / 1e6:.0f} MB of float32 weights read once per token at {read_gbs:.1f} GB/s "
        f"(measured) = {1000 * weights / read_gbs / 1e9:.1f} ms"
    )
    if args.sample_tokens:
        # the control: the float32 model's own samples must score a gap of 0 (up to float rounding)
        samplers = [("float32 (control)", model), ("int8", int8)]
        if "bf16" in others:
            samplers += [("bf16 copy", others["bf16"]), ("bf16 copy, grouped eager attention", others["bf16-grouped"])]
        for name, sampler in samplers:
            gap = logp_gap(model, sampler, tokenizer, args.sample_tokens, args.rows)
            print(
                f"{name} samples scored by the float32 model ({gap['tokens']} tokens): mean |log p gap| "
                f"{gap['mean_abs_logp_gap']:.3f}, outside PPO's 0.8-1.2 ratio {gap['outside_clip']:.1%}, "
                f"KL(sampler || float32) ~ {gap['kl_estimate']:.3f} per token"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
