"""Warm start: supervised fine-tuning on sympy's antiderivatives of tree nodes, with TRL's ``SFTTrainer``.

A small model may solve no node of its variant trees, and then GRPO has no reward to amplify. A warm
start teaches the answer format and the easiest rules from answers sympy found and the verifier
accepted. It is **not** LADDER (LADDER learns from its own verified attempts, with no reference
answers): experiments report it as its own, labelled arm and never mix it into LADDER's numbers.

Example:
    >>> rows = [{"integrand": "2*x", "lower": "", "upper": "", "sympy_antiderivative": "x**2"}]
    >>> dataset = warm_start_dataset(rows, prompt=None)  # doctest: +SKIP
    >>> dataset[0]["completion"]  # doctest: +SKIP
    [{'role': 'assistant', 'content': '<answer>x**2</answer>'}]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ladder_hf.problems import Prompt, build_messages

logger = logging.getLogger(__name__)


def warm_start_dataset(
    rows: Iterable[Mapping[str, Any]], prompt: str | Prompt | None = "few_shot", sympy_timeout: float = 5.0
):
    """Prompt-completion chat rows (TRL's conversational format) for the indefinite rows whose sympy
    antiderivative the verifier accepts; definite rows and unverified answers are left out.

    A row's ``sympy_antiderivative`` (trees grown with sympy's solvability check have it) is used as is;
    rows without one get ``sympy.integrate`` in the sandbox, ``sympy_timeout`` seconds each (0: not
    computed, such rows are left out). The prompt is the one training and evaluation use
    (:func:`ladder_hf.problems.build_messages`), the completion the answer in the rewards' format.
    """
    import datasets

    from ladder_hf.variants.quality import fill_sympy_antiderivatives
    from ladder_hf.verifier import verify_batch

    candidates = [dict(r) for r in rows if not (r.get("lower") or "") and not (r.get("upper") or "")]
    fill_sympy_antiderivatives(candidates, sympy_timeout)
    candidates = [r for r in candidates if r.get("sympy_antiderivative")]
    results = verify_batch([{"integrand": r["integrand"], "candidate": r["sympy_antiderivative"]} for r in candidates])
    kept = [r for r, result in zip(candidates, results, strict=True) if result.correct]
    logger.info("warm start: %d of %d indefinite rows have a verified sympy antiderivative", len(kept), len(candidates))
    return datasets.Dataset.from_list(
        [
            {
                "prompt": build_messages(r, prompt),
                "completion": [{"role": "assistant", "content": f"<answer>{r['sympy_antiderivative']}</answer>"}],
            }
            for r in kept
        ]
    )


def warm_start(
    rows: Iterable[Mapping[str, Any]],
    output_dir: str,
    model_name_or_path: str = "default",
    *,
    prompt: str | Prompt | None = "few_shot",
    max_steps: int = 40,
    batch_size: int = 8,
    learning_rate: float = 3e-5,
    seed: int = 0,
) -> dict[str, Any]:
    """SFT ``model_name_or_path`` on :func:`warm_start_dataset` of ``rows`` and save it to ``output_dir``
    (resumes from the last checkpoint there). Loss is on the completion only. Returns the row count,
    steps and final training loss.
    """
    import torch
    from trl import SFTConfig, SFTTrainer

    from ladder_hf.grpo import last_complete_checkpoint
    from ladder_hf.models import load_model_and_tokenizer

    dataset = warm_start_dataset(rows, prompt)
    if len(dataset) == 0:
        raise ValueError("no row has a verified sympy antiderivative to warm-start on (grow trees with sympy on)")
    model, tokenizer = load_model_and_tokenizer(model_name_or_path, dtype="float32")
    tokenizer.padding_side = "right"  # training pads on the right; generation (left) is set again on load
    args = SFTConfig(
        output_dir=output_dir,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="steps",
        save_steps=max(1, max_steps // 4),
        save_total_limit=1,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        # TRL defaults to bf16 and activation checkpointing: on a CPU without native bf16 (AVX512-BF16/AMX)
        # bf16 matmuls are ~80x slower than float32 (a 135M step took 300 s), and a small model has
        # no memory to save
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        activation_checkpointing=False,
        dataloader_num_workers=0,
        completion_only_loss=True,
        max_length=1024,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    last = last_complete_checkpoint(output_dir)
    result = trainer.train(resume_from_checkpoint=last)
    trainer.save_model(output_dir)
    trainer.save_state()  # trainer_state.json beside the weights: the loss curve, and "finished" for a resume
    tokenizer.save_pretrained(output_dir)
    return {"rows": len(dataset), "global_step": trainer.state.global_step, "train_loss": result.training_loss}
