"""How should TTRL get the original weights back after each problem? Time and memory, measured.

Compares, on the same model in the same run:

* ``reload``   (baseline) - re-read the weights from disk with ``from_pretrained``;
* ``snapshot`` - keep a state_dict copy in memory, copy it back in place after each problem;
* ``lora``     - wrap in a fresh LoRA adapter per problem (``get_peft_model``), discard it with
  ``unload()`` (no merge), so the frozen base weights are never written.

It also times building a ``GRPOTrainer`` per problem from the already-loaded model object vs. from
the path (which reloads the model), the other per-problem cost TTRL can avoid.

    python benchmarks/ttrl_restore.py                 # embedded SmolLM2-135M-Instruct
    python benchmarks/ttrl_restore.py --model tiny    # tiny random model (seconds)

Prints medians over ``--repeats`` and ratios against the reload baseline.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def _median_time(fn, repeats: int) -> tuple[float, list]:
    times, outs = [], []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        outs.append(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), outs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (embedded SmolLM2), 'tiny', or a path/Hub id")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import torch
    from peft import LoraConfig, get_peft_model
    from trl import GRPOConfig, GRPOTrainer

    from ladder_hf.models import load_model_and_tokenizer, resolve_model_name_or_path, save_tiny_model
    from ladder_hf.ttrl import restore_weights, snapshot_weights, weights_equal

    tmp = tempfile.mkdtemp(prefix="ttrl-bench-")
    if args.model == "tiny":
        path = save_tiny_model(os.path.join(tmp, "tiny"))
    else:
        path = resolve_model_name_or_path(args.model)
    model, tokenizer = load_model_and_tokenizer(path, dtype="float32")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {path}  parameters: {n_params / 1e6:.1f} M  torch threads: {torch.get_num_threads()}")

    def perturb(m):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1e-3)

    rows = []

    # Baseline: reload from disk.
    rss0 = _rss_mb()
    t_reload, fresh = _median_time(lambda: load_model_and_tokenizer(path, dtype="float32")[0], args.repeats)
    reload_ok = all(not weights_equal(m, snapshot_weights(model)) for m in fresh[:1])
    del fresh
    gc.collect()
    rows.append(("reload (baseline)", t_reload, "one extra model while loading", reload_ok))

    # Snapshot: one copy taken once, copied back per problem.
    rss_before = _rss_mb()
    t_take, snaps = _median_time(lambda: snapshot_weights(model), 1)
    snap = snaps[0]
    snap_mb = sum(t.numel() * t.element_size() for t in {t.data_ptr(): t for t in snap.values()}.values()) / 2**20
    rss_snap = _rss_mb() - rss_before

    def do_restore():
        perturb(model)
        t0 = time.perf_counter()
        restore_weights(model, snap)
        return time.perf_counter() - t0

    restore_times = [do_restore() for _ in range(args.repeats)]
    t_restore = statistics.median(restore_times)
    rows.append(
        (
            "snapshot (copy back)",
            t_restore,
            f"+{snap_mb:.0f} MB held (RSS +{rss_snap:.0f} MB); take once {t_take:.3f} s",
            not weights_equal(model, snap),
        )
    )

    # LoRA: wrap, touch the adapter, discard.
    lora_cfg = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")

    def lora_cycle():
        nonlocal model
        wrapped = get_peft_model(model, lora_cfg)
        adapter_mb = sum(p.numel() * p.element_size() for n, p in wrapped.named_parameters() if "lora_" in n) / 2**20
        with torch.no_grad():
            for n, p in wrapped.named_parameters():
                if "lora_B" in n:
                    p.add_(1.0)
        model = wrapped.unload()
        for p in model.parameters():
            p.requires_grad_(True)
        return adapter_mb

    t_lora, adapters = _median_time(lora_cycle, args.repeats)
    rows.append(("lora (discard adapter)", t_lora, f"+{adapters[0]:.1f} MB adapter", not weights_equal(model, snap)))

    # GRPOTrainer per problem: from the loaded model object vs. from the path.
    from datasets import Dataset

    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}]}] * 4)
    cfg = GRPOConfig(
        output_dir=os.path.join(tmp, "run"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=2,
        num_generations=2,
        max_steps=1,
        report_to=[],
        save_strategy="no",
    )

    def reward(completions, **kwargs):
        return [0.0] * len(completions)

    def build(m):
        trainer = GRPOTrainer(model=m, reward_funcs=[reward], args=cfg, train_dataset=ds, processing_class=tokenizer)
        del trainer

    t_init_obj, _ = _median_time(lambda: build(model), args.repeats)
    t_init_path, _ = _median_time(lambda: build(path), args.repeats)

    print(f"\nweight restore, median of {args.repeats} (RSS at start {rss0:.0f} MB)")
    print("| strategy | median s | vs reload | memory | bitwise equal after |")
    print("|---|---|---|---|---|")
    for name, t, mem, ok in rows:
        print(f"| {name} | {t:.4f} | {t / t_reload:.3f}x | {mem} | {ok} |")
    print(f"\nGRPOTrainer construction per problem, median of {args.repeats}")
    print("| built from | median s | ratio |")
    print("|---|---|---|")
    print(f"| model path (reloads weights, baseline) | {t_init_path:.3f} | 1.000x |")
    print(f"| loaded model object (TTRL) | {t_init_obj:.3f} | {t_init_obj / t_init_path:.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
