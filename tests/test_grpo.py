"""LADDER GRPO recipe: data and prompt helpers, reward timing, and real training runs on the tiny model."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset

from ladder_hf.callbacks import RewardTimer
from ladder_hf.configs import ScriptArguments
from ladder_hf.grpo import make_parser
from ladder_hf.problems import DEFAULT_SYSTEM_PROMPT
from ladder_hf.trainer import ladder_card_section
from ladder_hf.training_data import add_prompts, load_variant_dataset, order_by_curriculum

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "grpo.py"
TINY_CONFIG = ROOT / "recipes" / "configs" / "grpo_tiny.yaml"
CPU_ACCELERATE = ROOT / "recipes" / "accelerate_configs" / "cpu.yaml"

VARIANT_ROWS = [
    {"id": "v0", "integrand": "x**2", "lower": "", "upper": "", "depth": 0, "difficulty": 3.0},
    {"id": "v1", "integrand": "cos(x)", "lower": "0", "upper": "pi/2", "depth": 1, "difficulty": 2.0},
    {"id": "v2", "integrand": "x", "lower": "", "upper": "", "depth": 2, "difficulty": 1.0},
    {"id": "v3", "integrand": "exp(x)", "lower": None, "upper": None, "depth": 1, "difficulty": None},
    {"id": "v4", "integrand": "2*x", "lower": "", "upper": "", "depth": 2, "difficulty": 0.5},
    {"id": "v5", "integrand": "sin(x)", "lower": "", "upper": "", "depth": 1, "difficulty": 1.5},
    {"id": "v6", "integrand": "1/x", "lower": "1", "upper": "2", "depth": 0, "difficulty": 2.5},
    {"id": "v7", "integrand": "3*x**2", "lower": "", "upper": "", "depth": 2, "difficulty": 0.7},
]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------------------------- helpers


def test_add_prompts_builds_paper_prompt_and_keeps_reward_columns():
    ds = add_prompts(Dataset.from_list(VARIANT_ROWS[:4]))
    first, definite, missing_bounds = ds[0], ds[1], ds[3]
    assert first["prompt"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert first["prompt"][1]["content"] == "Find the indefinite integral: ∫ x**2 dx"
    assert "pi/2" in definite["prompt"][1]["content"] and "cos(x)" in definite["prompt"][1]["content"]
    # None bounds become "" so the reward treats the row as indefinite.
    assert (missing_bounds["lower"], missing_bounds["upper"]) == ("", "")
    assert {"integrand", "lower", "upper", "depth"} <= set(ds.column_names)


def test_add_prompts_custom_system_prompt_and_template():
    ds = add_prompts(
        Dataset.from_list(VARIANT_ROWS[:1]), system_prompt=None, indefinite_template="Integrate {integrand}"
    )
    assert ds[0]["prompt"] == [{"role": "user", "content": "Integrate x**2"}]


def test_add_prompts_rejects_rows_without_integrals():
    with pytest.raises(ValueError, match="integrand"):
        add_prompts(Dataset.from_list([{"question": "1+1"}]))


def test_curriculum_orders_easy_to_hard():
    ds = Dataset.from_list(VARIANT_ROWS)
    assert order_by_curriculum(ds, "none")["id"] == [r["id"] for r in VARIANT_ROWS]
    assert order_by_curriculum(ds, "depth")["depth"] == [2, 2, 2, 1, 1, 1, 0, 0]
    by_difficulty = order_by_curriculum(ds, "difficulty")
    assert by_difficulty["id"][:3] == ["v4", "v7", "v2"]
    assert by_difficulty["difficulty"][-1] is None  # unknown difficulty goes last
    both = order_by_curriculum(ds, "depth_difficulty")
    assert both["id"][:3] == ["v4", "v7", "v2"] and both["id"][-2:] == ["v6", "v0"]
    with pytest.raises(ValueError, match="depth"):
        order_by_curriculum(Dataset.from_list([{"integrand": "x"}]), "depth")
    with pytest.raises(ValueError):
        ScriptArguments(dataset_name="x", curriculum="hardest_first")


def test_load_variant_dataset_from_jsonl_and_parquet(tmp_path):
    path = _write_jsonl(tmp_path / "rows.jsonl", VARIANT_ROWS)
    from_jsonl = load_variant_dataset(path)
    assert from_jsonl["integrand"] == [r["integrand"] for r in VARIANT_ROWS]
    from_jsonl.to_parquet(str(tmp_path / "rows.parquet"))
    assert load_variant_dataset(str(tmp_path / "rows.parquet"))["id"] == from_jsonl["id"]
    with pytest.raises(ValueError, match="cannot read"):
        (tmp_path / "rows.txt").write_text("x")
        load_variant_dataset(str(tmp_path / "rows.txt"))


def test_load_variant_dataset_from_variants_folder_excludes_roots(tmp_path):
    from ladder_hf.variants import SymbolicGenerator, generate_tree

    problems = [{"id": "p1", "integrand": "x**2*exp(x)", "lower": "", "upper": ""}]
    generate_tree(
        problems, SymbolicGenerator(seed=0), depth=1, out_dir=str(tmp_path), variants_per_node=3, progress=False
    )
    ds = load_variant_dataset(str(tmp_path))
    assert len(ds) >= 1
    assert set(ds["depth"]) == {1}  # default config `variants`: the root problem is not trained on
    assert set(ds["root_id"]) == {"p1"}
    assert load_variant_dataset(str(tmp_path), config="all")["depth"].count(0) == 1


def test_model_card_section_lists_run_facts():
    text = ladder_card_section(
        {
            "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "dataset": "org/variants",
            "dataset_revision": "v1.0",
            "reward_funcs": "integration, format",
            "steps": 7,
            "eval_scores": {"integration_bee/accuracy": 0.25},
        }
    )
    for needle in ("SmolLM2-135M-Instruct", "org/variants", "v1.0", "integration, format", "| 7 |", "0.25"):
        assert needle in text


# --------------------------------------------------------------------------------------------- reward timing


def test_reward_timer_keeps_trl_calling_convention_and_name():
    from trl.trainer.utils import get_callable_name, is_async_callable

    from ladder_hf.rewards import format_reward

    timer = RewardTimer()
    timed = timer.wrap(format_reward)
    assert get_callable_name(timed) == "format_reward"
    assert not is_async_callable(timed)
    completions = [
        [{"role": "assistant", "content": "<answer>x**2/2</answer>"}],
        [{"role": "assistant", "content": "no"}],
    ]
    kwargs = {"integrand": ["x", "x"], "lower": ["", ""], "upper": ["", ""], "trainer_state": None}
    assert timed(prompts=[[], []], completions=completions, completion_ids=None, **kwargs) == [1.0, 0.0]


def test_reward_timer_share_counts_sync_time():
    timer = RewardTimer()

    def slow_reward(prompts, completions, **kwargs):
        time.sleep(0.2)
        return [0.0] * len(completions)

    timed = timer.wrap(slow_reward)
    timer.step_begin()
    time.sleep(0.2)
    timed(prompts=["p"], completions=["c"])
    timer.step_end()
    metrics = timer.flush()
    assert 0.35 < metrics["timing/reward_share"] < 0.65
    assert metrics["timing/reward_seconds/slow_reward"] >= 0.2
    assert timer.flush() == {}  # flushed metrics are not reported twice


def test_reward_timer_async_stays_async_and_overlap_counts_once():
    from trl.trainer.utils import get_callable_name, is_async_callable

    timer = RewardTimer()

    async def async_a(prompts, completions, **kwargs):
        await asyncio.sleep(0.3)
        return [1.0] * len(completions)

    async def async_b(prompts, completions, **kwargs):
        await asyncio.sleep(0.3)
        return [0.5] * len(completions)

    wrapped = [timer.wrap(async_a), timer.wrap(async_b)]
    assert all(is_async_callable(w) for w in wrapped)
    assert [get_callable_name(w) for w in wrapped] == ["async_a", "async_b"]

    async def run_both():  # as TRL does: asyncio.gather over the async reward functions
        return await asyncio.gather(*(w(prompts=["p"], completions=["c"]) for w in wrapped))

    timer.step_begin()
    assert asyncio.run(run_both()) == [[1.0], [0.5]]
    timer.step_end()
    metrics = timer.flush()
    # Both ran 0.3 s concurrently: 0.3 s of reward wall time, not 0.6 s.
    assert 0.28 < metrics["timing/reward_seconds"] < 0.5
    assert metrics["timing/reward_seconds/async_a"] >= 0.29


# --------------------------------------------------------------------------------------------- config parsing


def test_parser_reads_yaml_with_command_line_overrides(tmp_path):
    script_args, training_args, model_args = make_parser().parse_args_and_config(
        args=["--config", str(TINY_CONFIG), "--max_steps", "5", "--curriculum", "depth", "--output_dir", str(tmp_path)]
    )
    assert script_args.reward_funcs == ["integration", "format"]
    assert script_args.curriculum == "depth"
    assert training_args.max_steps == 5  # command line beats YAML (which says 2)
    assert training_args.reward_weights == [1.0, 0.1]
    assert model_args.model_name_or_path == "default"


def test_parser_rejects_unknown_yaml_keys(tmp_path):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["not_an_option"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="not_an_option"):
        make_parser().parse_args_and_config(args=["--config", str(path)])


GRPO_CONFIGS = ["grpo_tiny.yaml", "smollm2_cpu.yaml", "llama3.2-3b_undergrad.yaml", "r1-distill-qwen-7b_mit.yaml"]


@pytest.mark.parametrize("name", GRPO_CONFIGS)
def test_shipped_configs_parse(name):
    # GPU configs ask for bf16, which transformers refuses to validate on a CPU-only machine.
    cpu = ["--bf16", "false", "--use_cpu", "true"]
    script_args, training_args, model_args = make_parser().parse_args_and_config(
        args=["--config", str(ROOT / "recipes" / "configs" / name), *cpu]
    )
    from ladder_hf.rewards import REWARD_FUNCS

    assert script_args.reward_funcs and set(script_args.reward_funcs) <= set(REWARD_FUNCS)
    assert training_args.reward_weights is None or len(training_args.reward_weights) == len(script_args.reward_funcs)
    assert bool(script_args.dataset_name) != bool(script_args.problems) or name == "grpo_tiny.yaml"
    if name.startswith(("llama", "r1")):  # the paper's settings
        assert training_args.beta == 0.001 and training_args.use_vllm
        assert training_args.per_device_train_batch_size * 8 == 128
        assert model_args.model_name_or_path.startswith(("meta-llama/", "deepseek-ai/"))


# --------------------------------------------------------------------------------------------- real runs


def _env(offline: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if offline:
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"})
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    return env


def _config(tmp_path: Path, model_dir: str, **overrides) -> str:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config.update(model_name_or_path=model_dir, output_dir=str(tmp_path / "out"), **overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _run(cmd: list[str], timeout: int = 600, offline: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(offline), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-8000:]}"
    return proc


def _state(output_dir: Path) -> dict:
    return json.loads((output_dir / "trainer_state.json").read_text())


@pytest.fixture
def variants_file(tmp_path) -> str:
    return _write_jsonl(tmp_path / "variants.jsonl", VARIANT_ROWS)


def test_recipe_trains_two_steps_from_yaml(tmp_path, tiny_model_dir, variants_file):
    config = _config(
        tmp_path,
        tiny_model_dir,
        dataset_name=variants_file,
        # held-out problems unlike every training row (the recipe refuses rows equivalent to its eval set)
        eval_set=_write_jsonl(
            tmp_path / "eval.jsonl", [{"id": "e1", "integrand": "x*exp(x)"}, {"id": "e2", "integrand": "log(x)"}]
        ),
        eval_every_steps=1,
        eval_max_problems=2,
        eval_max_new_tokens=8,
    )
    out = tmp_path / "out"
    _run([sys.executable, str(RECIPE), "--config", config])

    state = _state(out)
    assert state["global_step"] == 2
    train_logs = [h for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in train_logs] == [1, 2]
    for log in train_logs:
        # TRL's per-function reward stats and zero-variance fraction, plus our timing and held-out scores.
        for key in (
            "rewards/integration_reward/mean",
            "rewards/integration_reward/std",
            "rewards/format_reward/mean",
            "frac_reward_zero_std",
            "timing/step_seconds",
            "timing/reward_seconds/integration_reward",
            "timing/generate_seconds",
            "timing/loss_seconds",
            "integration_bee/accuracy",
        ):
            assert key in log, key
        # where the step's time went: the phases add up to the step
        phases = sum(log[f"timing/{p}_seconds"] for p in ("generate", "score", "reward", "loss", "other"))
        assert phases == pytest.approx(log["timing/step_seconds"], rel=0.05)
        assert log["timing/generate_seconds"] > 0 and log["timing/loss_seconds"] > 0
        assert 0.0 <= log["timing/reward_share"] < 1.0
        assert log["timing/reward_seconds"] <= log["timing/step_seconds"]
        assert log["integration_bee/count"] == 2
    assert (out / "model.safetensors").is_file() and (out / "checkpoint-2").is_dir()
    card = (out / "README.md").read_text()
    assert "## LADDER training" in card and tiny_model_dir in card and "integration_reward, format_reward" in card
    assert "| optimizer steps | 2 |" in card and "integration_bee/accuracy" in card
    # One process, 4 completions per step = 1 prompt per step over 8 rows.
    assert train_logs[-1]["epoch"] == pytest.approx(2 / len(VARIANT_ROWS))


def test_generation_stops_at_stop_strings(tmp_path, tiny_model_dir, variants_file):
    # TRL builds its GenerationConfig from generation_kwargs but does not hand generate() the tokenizer
    # that stop_strings need; the LADDER trainer does. The random tiny model writes a lowercase "e"
    # within a few tokens, so with it as a stop string completions end long before the budget.
    lengths = {}
    for name, kwargs in (("plain", None), ("stop", {"stop_strings": ["e"]})):
        (tmp_path / name).mkdir()
        out = tmp_path / name / "out"
        config = _config(
            tmp_path / name,
            tiny_model_dir,
            dataset_name=variants_file,
            max_steps=1,
            max_completion_length=48,
            generation_kwargs=kwargs,
            save_strategy="no",
        )
        _run([sys.executable, str(RECIPE), "--config", config])
        [log] = [h for h in _state(out)["log_history"] if "loss" in h]
        lengths[name] = log["completions/mean_length"]
    assert lengths["plain"] > 40 and lengths["stop"] < 20, lengths


@pytest.mark.slow
def test_cli_resumes_from_last_checkpoint(tmp_path, tiny_model_dir, variants_file):
    from ladder_hf.cli import main as cli_main

    config = _config(tmp_path, tiny_model_dir, dataset_name=variants_file)
    out = tmp_path / "out"
    _run([sys.executable, str(RECIPE), "--config", config, "--max_steps", "1"])
    first_history = _state(out)["log_history"][:1]
    assert (out / "checkpoint-1").is_dir()

    # A later checkpoint cut off while saving (a kill or a full disk: the Trainer writes trainer_state.json
    # last) must not block the resume.
    (out / "checkpoint-7").mkdir()
    (out / "checkpoint-7" / "config.json").write_text("{}")

    # Same output_dir, one more step: `ladder-hf train` picks up checkpoint-1 on its own.
    assert cli_main(["train", "--config", config, "--max_steps", "2"]) == 0
    resumed = _state(out)
    assert resumed["global_step"] == 2 and (out / "checkpoint-2").is_dir()
    # The first log entry comes from the checkpoint (its wall-clock timings match exactly); a run
    # from scratch would have logged a fresh one.
    assert resumed["log_history"][:1] == first_history
    assert [h["step"] for h in resumed["log_history"] if "loss" in h] == [1, 2]
    assert "| optimizer steps | 2 |" in (out / "README.md").read_text()


@pytest.mark.slow
def test_recipe_lora_and_curriculum(tmp_path, tiny_model_dir, variants_file):
    config = _config(
        tmp_path, tiny_model_dir, dataset_name=variants_file, max_steps=1, curriculum="depth", save_strategy="no"
    )
    _run([sys.executable, str(RECIPE), "--config", config, "--use_peft", "--lora_r", "4", "--lora_alpha", "8"])
    out = tmp_path / "out"
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["peft_type"] == "LORA"
    assert _state(out)["global_step"] == 1


@pytest.mark.slow
@pytest.mark.distributed
def test_recipe_under_accelerate_two_cpu_processes(tmp_path, tiny_model_dir):
    """Two gloo processes; variants grown on the fly from --problems (first process grows, the other waits)."""
    problems = _write_jsonl(
        tmp_path / "problems.jsonl",
        [
            {"id": "p1", "integrand": "x**2*exp(x)", "lower": "", "upper": ""},
            {"id": "p2", "integrand": "x*sin(x)", "lower": "", "upper": ""},
        ],
    )
    config = _config(
        tmp_path,
        tiny_model_dir,
        problems=problems,
        variant_depth=1,
        variants_per_node=4,
        eval_set=problems,
        eval_max_new_tokens=8,
    )
    proc = _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(CPU_ACCELERATE),
            "--num_processes",
            "2",
            str(RECIPE),
            "--config",
            config,
        ]
    )
    out = tmp_path / "out"
    state = _state(out)
    assert state["global_step"] == 2
    train_rows = len(load_variant_dataset(str(out / "variants")))
    # 2 processes x 4 completions = 8 completions = 2 prompts per step (1 prompt with a single process).
    assert state["log_history"][1]["epoch"] == pytest.approx(2 * 2 / train_rows, rel=1e-3)
    assert "timing/reward_share" in state["log_history"][1]
    assert "integration_bee/accuracy" in (out / "README.md").read_text()
    assert "[rank1]" not in proc.stderr or "Traceback" not in proc.stderr


@pytest.mark.slow
def test_recipe_trains_on_pinned_hub_dataset_and_pushes_model(tmp_path, tiny_model_dir, hub_server):
    """Hub dataset at a tag -> 1 step -> model + card pushed; all over HTTP to the local test Hub."""
    publish = textwrap.dedent(
        """
        import json, sys
        from datasets import Dataset
        from huggingface_hub import HfApi
        rows = json.loads(sys.argv[1])
        info = Dataset.from_list(rows[:6]).push_to_hub("org/variants")
        HfApi().create_tag("org/variants", tag="v1.0", revision=info.oid, repo_type="dataset")
        Dataset.from_list(rows).push_to_hub("org/variants")  # main moves on to 8 rows; v1.0 keeps 6
        """
    )
    _run([sys.executable, "-c", publish, json.dumps(VARIANT_ROWS)], offline=False)

    config = _config(tmp_path, tiny_model_dir, dataset_name="org/variants", max_steps=1, save_strategy="no")
    overrides = ["--dataset_revision", "v1.0", "--push_to_hub", "true", "--hub_model_id", "org/ladder-tiny"]
    _run([sys.executable, str(RECIPE), "--config", config, *overrides], offline=False)

    check = textwrap.dedent(
        """
        from huggingface_hub import HfApi, hf_hub_download
        files = HfApi().list_repo_files("org/ladder-tiny")
        print(sorted(files))
        print(open(hf_hub_download("org/ladder-tiny", "README.md")).read())
        """
    )
    pushed = _run([sys.executable, "-c", check], offline=False).stdout
    assert "model.safetensors" in pushed and "config.json" in pushed
    assert "| training data | org/variants |" in pushed and "| data revision | v1.0 |" in pushed
    assert "| training rows | 6 |" in pushed  # the tag was honoured, not main
    assert "| optimizer steps | 1 |" in pushed and "- org/variants" in pushed  # card metadata names the dataset


# --------------------------------------------------------------------------------------------- level selection


class ScriptedAnswers:
    """A generation backend (ladder_hf.generation protocol) answering each integrand from a script."""

    model_name = "scripted"

    def __init__(self, answers: dict[str, list[str]]):
        self.answers, self.calls = answers, 0

    def generate(self, conversations, *, n=1, **kwargs):
        self.calls += 1
        out = []
        for conversation in conversations:
            integrand = re.fullmatch(r"∫\S* (.+) dx", conversation[-1]["content"]).group(1)
            out.append([f"<answer>{a}</answer>" for a in self.answers[integrand][:n]])
        return out


def test_measure_solve_rates_scores_samples_per_row_and_resumes(tmp_path):
    from ladder_hf.training_data import measure_solve_rates, select_by_solve_rate, solve_rate_table

    rows = [
        {"integrand": "2*x", "lower": "", "upper": "", "depth": 1},
        {"integrand": "cos(x)", "lower": "0", "upper": "pi/2", "depth": 2},
        {"integrand": "exp(x)", "lower": "", "upper": "", "depth": 2},
    ]
    backend = ScriptedAnswers(
        {"2*x": ["x**2", "x**2 + 3", "x", "2"], "cos(x)": ["1", "0", "2", "3"], "exp(x)": ["exp(x)"] * 4}
    )
    store = tmp_path / "solve_rates.jsonl"
    rates = measure_solve_rates(rows, backend, samples=4, prompt="compact", store_path=str(store))
    assert rates == [0.5, 0.25, 1.0]
    assert len(store.read_text().splitlines()) == 3
    # a second run reads the stored rates instead of asking the model again
    again = ScriptedAnswers({})
    assert measure_solve_rates(rows, again, samples=4, prompt="compact", store_path=str(store)) == rates
    assert again.calls == 0
    # rates measured with 4 samples are not a 2-sample measurement: those are drawn anew, and both stay stored
    fewer = ScriptedAnswers({"2*x": ["x**2", "x**2"], "cos(x)": ["0", "0"], "exp(x)": ["1", "1"]})
    assert measure_solve_rates(rows, fewer, samples=2, prompt="compact", store_path=str(store)) == [1.0, 0.0, 0.0]
    assert fewer.calls == 1
    assert measure_solve_rates(rows, ScriptedAnswers({}), samples=4, prompt="compact", store_path=str(store)) == rates
    table = solve_rate_table(rows, rates)
    assert [(t["depth"], t["rows"], t["edge"], t["always"]) for t in table] == [(1, 1, 1, 0), (2, 2, 1, 1)]
    kept = select_by_solve_rate(Dataset.from_list(rows), rates)
    assert kept["integrand"] == ["2*x", "cos(x)"]  # the always-solved row carries no GRPO signal


def test_level_selection_in_the_recipe_refuses_when_nothing_is_at_the_models_level(tmp_path, tiny_model_dir):
    from trl import GRPOConfig, ModelConfig

    from ladder_hf.grpo import select_at_model_level

    rows = add_prompts(Dataset.from_list(VARIANT_ROWS[:4]), "compact")
    script_args = ScriptArguments(system_prompt="compact", solve_rate_samples=2, solve_rate_max_new_tokens=4)
    training_args = GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none")
    model_args = ModelConfig(model_name_or_path=tiny_model_dir)
    # the tiny random model solves nothing: an error that says what to change, not an empty training set
    with pytest.raises(ValueError, match="no training row has a solve rate in"):
        select_at_model_level(rows, script_args, training_args, model_args)
    by_depth = json.loads((tmp_path / "out" / "solve_rates_by_depth.json").read_text())
    assert sum(t["rows"] for t in by_depth) == 4 and all(t["never"] == t["rows"] for t in by_depth)
    # widened to keep never-solved rows, the same measurement (read back from the store) keeps them all
    script_args.solve_rate_range = [-1.0, 1.0]
    kept, rates = select_at_model_level(rows, script_args, training_args, model_args)
    assert len(kept) == 4 and rates == [0.0] * 4


def test_edge_sampler_has_trls_batch_layout_and_draws_the_same_prompts_in_every_process():
    from trl.trainer.utils import RepeatSampler

    from ladder_hf.trainer import EdgeSampler

    keys = [f"x**{i}||" for i in range(8)]
    # every row on the edge and no exploring: the layout of TRL's sampler (prompt repeats, then batch repeats)
    sampler = EdgeSampler(keys, [0.5] * 8, explore=0.0, seed=3).set_layout(
        mini_repeat_count=4, batch_size=2, repeat_count=3
    )
    trl_sampler = RepeatSampler(keys, mini_repeat_count=4, batch_size=2, repeat_count=3, shuffle=False)
    ours = list(sampler)
    assert len(ours) == len(sampler) == len(list(trl_sampler))
    for block in range(0, len(ours), 24):  # one drawn batch: 2 prompts x 4 completions, 3 times
        batch = ours[block : block + 24]
        assert batch[:8] * 3 == batch and batch[:4] == [batch[0]] * 4 and batch[4] != batch[0]
    # same seed and the same updates: the same prompts, as every GRPO process must see
    twin = EdgeSampler(keys, [0.5] * 8, explore=0.0, seed=3).set_layout(4, 2, 3)
    assert list(twin) == ours


def test_edge_sampler_explores_off_the_edge_and_saves_its_state(tmp_path):
    from ladder_hf.trainer import EdgeSampler

    keys = [f"x**{i}||" for i in range(10)]
    rates = [0.5, 0.25] + [0.0] * 7 + [None]  # two rows on the edge, seven never solved, one unscorable
    sampler = EdgeSampler(keys, rates, explore=0.3, seed=0)
    draws = sampler.draw(2000)
    off = sum(i >= 2 for i in draws) / len(draws)
    assert 0.25 < off < 0.35 and 9 not in draws  # the asked share off the edge; never an unknown level
    assert sampler.log_metrics()["level/explored_frac"] == pytest.approx(off)
    sampler.update(["x**5||"] * 8 + ["x**0||"] * 8, [1.0, 0.0] * 4 + [1.0] * 8)
    assert sampler.levels["x**5||"] == 0.5 and sampler.levels["x**0||"] == 1.0
    assert sampler.log_metrics() | {"level/explored_frac": 0} == {
        "level/edge_rows": 2,
        "level/joined": 1,
        "level/left": 1,
        "level/explored_frac": 0,
    }
    sampler.update(["x**1||"] * 2, [float("nan"), None])  # nothing scored: the level stands
    assert sampler.levels["x**1||"] == 0.25
    sampler.save(str(tmp_path / "state.json"))
    restored = EdgeSampler(keys, rates, explore=0.3, seed=99)
    restored.load(str(tmp_path / "state.json"))
    assert restored.levels == sampler.levels and restored.draw(50) == sampler.draw(50)
    with pytest.raises(ValueError, match="no row"):
        EdgeSampler(["a||"], [None]).draw(1)


def test_dynamic_level_trains_on_the_edge_keeps_it_across_a_resume_and_stops_when_it_is_empty(
    tmp_path, tiny_model_dir, variants_file
):
    from ladder_hf.training_data import SOLVE_RATES_FILE, problem_key

    out = tmp_path / "out"
    out.mkdir()
    # The level before training, stored where the recipe measures it: v1 on the edge, the rest never solved.
    edge_key = problem_key(VARIANT_ROWS[1])
    _write_jsonl(
        out / SOLVE_RATES_FILE,
        [
            {"key": problem_key(r), "solve_rate": 0.5 if r["id"] == "v1" else 0.0, "samples": 2, "draws": 2}
            for r in VARIANT_ROWS
        ],
    )
    config = _config(
        tmp_path,
        tiny_model_dir,
        dataset_name=variants_file,
        solve_rate_samples=2,
        dynamic_level=True,
        level_explore=0.0,
        max_steps=3,
        save_steps=1,
    )
    proc = _run([sys.executable, str(RECIPE), "--config", config])
    first = json.loads((out / "checkpoint-1" / "edge_sampler.json").read_text())
    # The first prompt came from the edge: v1. The random tiny model failed its whole group, so v1 left it,
    # and with nothing left at the model's level the run stopped after that step instead of going on to 3.
    assert first["explored"] < first["drawn"] and first["levels"][edge_key] == 0.0
    assert (first["joined"], first["left"]) == (0, 1)
    assert _state(out)["global_step"] == 1 and "no training row is at the model's level any more" in proc.stdout
    [log] = [h for h in _state(out)["log_history"] if "loss" in h]
    assert (log["level/edge_rows"], log["level/left"]) == (0, 1)
    assert "dynamic: prompts drawn from the rows" in (out / "README.md").read_text()

    # Run again: it resumes from checkpoint-1 with that checkpoint's levels. The edge is still empty, so the next
    # prompt is drawn off it (restarted from the measurement before training, v1 would be drawn from the edge
    # again), and the run stops after one more step.
    _run([sys.executable, str(RECIPE), "--config", config])
    final = json.loads((out / "edge_sampler.json").read_text())
    assert final["drawn"] - final["explored"] == first["drawn"] - first["explored"]
    assert final["drawn"] > first["drawn"] and final["left"] == 1
    assert _state(out)["global_step"] == 2


def test_script_arguments_prompt_keeps_a_named_prompts_templates():
    compact = ScriptArguments(system_prompt="compact").prompt()
    assert compact.indefinite_template == "∫ {integrand} dx" and len(compact.examples) == 2
    custom = ScriptArguments(system_prompt="few_shot", indefinite_template="Q: {integrand}").prompt()
    assert custom.indefinite_template == "Q: {integrand}" and len(custom.examples) == 3


# --------------------------------------------------------------------------------------------- contamination


def test_training_rows_equivalent_to_the_eval_set_are_refused(tmp_path, caplog):
    from ladder_hf.training_data import check_against_eval_set

    eval_file = _write_jsonl(
        tmp_path / "eval.jsonl",
        [{"id": "t1", "integrand": "x**2*exp(x)"}, {"id": "t2", "integrand": "sin(x)**3"}],
    )
    rows = Dataset.from_list(
        [
            {"id": "a", "integrand": "x*exp(x)", "lower": "", "upper": ""},  # easier: allowed
            {"id": "b", "integrand": "(x**2 + 2*x + 1)*exp(x + 1)", "lower": "", "upper": ""},  # t1 shifted
        ]
    )
    # the whole eval set is protected, not only the problems scored during training
    script_args = ScriptArguments(eval_set=eval_file, eval_max_problems=1)
    with pytest.raises(ValueError, match=r"1 training row\(s\) are equivalent .* b ~ t1 \(affine"):
        check_against_eval_set(rows, script_args)
    script_args.allow_eval_overlap = True
    report = check_against_eval_set(rows, script_args)
    assert report.startswith("2 training rows checked against 2 problems") and "1 equivalent" in report
    clean = check_against_eval_set(rows.select([0]), script_args)
    assert "0 equivalent" in clean
    assert check_against_eval_set(rows, ScriptArguments()) == ""  # no eval set, nothing to protect


def test_a_tree_grown_under_the_eval_sets_protection_is_not_judged_twice(tmp_path):
    from ladder_hf.training_data import check_against_eval_set, grow_variants, guarded_when_grown, load_variants_folder
    from ladder_hf.variants import generate_tree, make_generator

    eval_file = _write_jsonl(tmp_path / "eval.jsonl", [{"id": "t1", "integrand": "x**2*exp(x)"}])
    problems = _write_jsonl(
        tmp_path / "train.jsonl",
        [{"id": "r1", "integrand": "x*sin(x)"}, {"id": "r2", "integrand": "(x**2 + 2*x + 1)*exp(x + 1)"}],
    )
    script_args = ScriptArguments(eval_set=eval_file)
    folder = str(tmp_path / "variants")
    grow_variants(problems, folder, 1, variants_per_node=3, protect=[{"id": "t1", "integrand": "x**2*exp(x)"}])
    assert guarded_when_grown(folder) == {"t1"}
    variants = load_variants_folder(folder, "variants")
    assert variants.num_rows and all(r["root_id"] == "r1" for r in variants)  # r2's tree is out
    report = check_against_eval_set(variants, script_args, guarded_when_grown(folder))
    assert f"{variants.num_rows} variants were judged when their tree was grown" in report
    assert check_against_eval_set(variants, script_args) == report.split(" (")[0]  # judged again: same counts
    # roots are always judged, even beside variants of a guarded tree
    root = {"id": "r2", "integrand": "(x**2 + 2*x + 1)*exp(x + 1)", "lower": "", "upper": "", "depth": 0}
    rows = Dataset.from_list([root, *variants.select_columns(list(root)).to_list()])
    with pytest.raises(ValueError, match=r"r2 ~ t1"):
        check_against_eval_set(rows, script_args, {"t1"})
    # a tree extended under another protection was guarded throughout only against what both runs protected
    generate_tree(
        [{"id": "r3", "integrand": "cos(x)"}], make_generator("symbolic"), 1, folder,
        protect=[{"id": "t9", "integrand": "tan(x)"}], variants_per_node=2, extend=True, progress=False,
    )  # fmt: skip
    assert guarded_when_grown(folder) == set()


def test_model_card_of_the_default_model_names_its_hub_id_and_asks_an_integral(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    from ladder_hf.models import DEFAULT_MODEL_NAME

    # The embedded model as the recipe finds it after conversion (its cache folder), played by the tiny model.
    cache = tmp_path / "cache"
    shutil.copytree(tiny_model_dir, cache / "models" / DEFAULT_MODEL_NAME)
    monkeypatch.setenv("LADDER_HF_CACHE", str(cache))
    config = _config(tmp_path, "default", dataset_name=_write_jsonl(tmp_path / "v.jsonl", VARIANT_ROWS[:2]))
    config_dict = yaml.safe_load(Path(config).read_text())
    config_dict.update(max_steps=1, save_strategy="no")
    Path(config).write_text(yaml.safe_dump(config_dict))
    out = tmp_path / "out"
    _run([sys.executable, str(RECIPE), "--config", config])

    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "huggingface.co/None" not in card and "Model Card for None" not in card
    assert str(cache) not in card and "| base model | HuggingFaceTB/SmolLM2-135M-Instruct |" in card
    assert "fine-tuned version of [HuggingFaceTB/SmolLM2-135M-Instruct](https://huggingface.co/" in card
    # The quick start asks an integral with our prompt builder, and runs as written against the saved model.
    code = card.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "build_messages" in code and "integrand" in code and "pipeline(" in code
    assert "time machine" not in card  # TRL's generic question is gone
    code = code.replace("max_new_tokens=128", "max_new_tokens=4")
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-4000:]


def _grpo_batch(tokenizer):
    """Two prompts x 3 completions, laid out as GRPOTrainer does: prompts left-padded, completions right-padded."""
    prompts = [tokenizer("Integrate x**2 dx please")["input_ids"], tokenizer("cos(x)")["input_ids"]]
    completions = [
        tokenizer(text)["input_ids"]
        for text in ("<answer>x**3/3</answer>", "x", "<answer>sin(x)", "<answer>", "sin(x) + 1", "no")
    ]
    width_p, width_c = max(map(len, prompts)), max(map(len, completions))
    pad = tokenizer.pad_token_id
    ids, mask = [], []
    for row, completion in enumerate(completions):
        prompt = prompts[row // 3]
        ids.append([pad] * (width_p - len(prompt)) + prompt + completion + [pad] * (width_c - len(completion)))
        mask.append(
            [0] * (width_p - len(prompt)) + [1] * (len(prompt) + len(completion)) + [0] * (width_c - len(completion))
        )
    return torch.tensor(ids), torch.tensor(mask), width_c, prompts, completions


@pytest.mark.parametrize("attention, temperature", [("sdpa", 0.7), ("ladder_grouped_eager", 1.0)])
def test_shared_prompt_logps_equal_a_full_forward_per_row_in_value_and_gradient(
    request, tiny_model, attention, temperature
):
    from ladder_hf.models import register_grouped_attention
    from ladder_hf.trainer import shared_prompt_logps

    model, tokenizer = tiny_model
    request.addfinalizer(functools.partial(model.set_attn_implementation, model.config._attn_implementation))
    model.set_attn_implementation(register_grouped_attention() if attention != "sdpa" else attention)
    ids, mask, k, prompts, completions = _grpo_batch(tokenizer)
    weights = torch.linspace(-1.0, 1.0, k)

    model.zero_grad()
    logps, entropies = shared_prompt_logps(model, ids, mask, k, temperature=temperature, compute_entropy=True)
    (logps * weights).sum().backward()
    shared_grads = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    expected_logps, expected_entropy, total = torch.zeros_like(logps), torch.zeros_like(logps), 0.0
    for row, completion in enumerate(completions):
        full = torch.tensor([prompts[row // 3] + completion])
        logits = model(input_ids=full).logits[0, -len(completion) - 1 : -1].float() / temperature
        log_softmax = torch.log_softmax(logits, -1)
        row_logps = log_softmax.gather(-1, torch.tensor(completion)[:, None])[:, 0]
        expected_logps[row, : len(completion)] = row_logps.detach()
        expected_entropy[row, : len(completion)] = -(log_softmax.exp() * log_softmax).sum(-1).detach()
        total = total + (row_logps * weights[: len(completion)]).sum()
    total.backward()

    assert torch.allclose(logps.detach(), expected_logps, atol=1e-5)
    assert torch.allclose(entropies.detach(), expected_entropy, atol=1e-4)
    assert (logps[mask[:, -k:] == 0] == 0).all()
    for shared, param in zip(shared_grads, model.parameters(), strict=True):
        assert torch.allclose(shared, param.grad, atol=1e-5, rtol=1e-4)
    model.zero_grad()


def test_grouped_eager_attention_computes_what_sdpa_computes_on_a_padded_batch(request, tiny_model):
    from ladder_hf.models import register_grouped_attention

    model, tokenizer = tiny_model
    request.addfinalizer(functools.partial(model.set_attn_implementation, model.config._attn_implementation))
    ids, mask, _, _, _ = _grpo_batch(tokenizer)  # left-padded prompts, right-padded completions
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # grouped-query attention
    logits = {}
    for attention in ("sdpa", register_grouped_attention()):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            logits[attention] = model(input_ids=ids, attention_mask=mask).logits
    expected, grouped = logits.values()
    assert torch.allclose(grouped[mask.bool()], expected[mask.bool()], atol=1e-5)


def test_grouped_eager_attention_leaves_a_soft_capped_model_to_its_own_eager_attention():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from ladder_hf.models import register_grouped_attention

    torch.manual_seed(0)
    config = Gemma2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        attn_logit_softcapping=0.5,
        initializer_range=0.5,  # scores large enough for the cap to change them
    )
    model = Gemma2ForCausalLM(config).eval()
    ids = torch.randint(0, 64, (2, 7))
    logits = {}
    for attention in ("eager", register_grouped_attention()):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            logits[attention] = model(input_ids=ids).logits
    eager, grouped = logits.values()
    assert torch.allclose(grouped, eager, atol=1e-5)


def test_trainer_scores_with_the_shared_prompt_and_matches_trls_loss_path(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from trl import GRPOConfig

    from ladder_hf.trainer import LadderGRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=6,
        num_generations=3,
        report_to=[],
        bf16=False,
        activation_checkpointing=False,
    )
    trainer = LadderGRPOTrainer(
        model=tiny_model_dir,
        reward_funcs=lambda completions, **_: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["a", "b"]}),
    )
    assert trainer.share_prompt
    ids, mask, k, _, _ = _grpo_batch(trainer.processing_class)
    shared = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, k, compute_entropy=True)
    trainer.share_prompt = False
    trl = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, k, compute_entropy=True)
    valid = mask[:, -k:].bool()
    assert torch.allclose(shared[0][valid], trl[0][valid], atol=1e-5)
    assert torch.allclose(shared[1][valid], trl[1][valid], atol=1e-4)


def test_generation_with_a_shared_prefill_samples_what_plain_generate_samples(tiny_model):
    from transformers import GenerationConfig

    from ladder_hf.generation import generate_with_shared_prefill, inverse_cdf_sampling

    model, tokenizer = tiny_model
    ids, mask, k, _, _ = _grpo_batch(tokenizer)
    prompt_ids, prompt_mask = ids[:, :-k], mask[:, :-k]
    for config in (
        GenerationConfig(max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id),
        GenerationConfig(max_new_tokens=6, do_sample=True, temperature=1.0, pad_token_id=tokenizer.pad_token_id),
    ):
        torch.manual_seed(3)
        shared = generate_with_shared_prefill(model, prompt_ids, prompt_mask, generation_config=config)
        torch.manual_seed(3)
        with inverse_cdf_sampling():  # how it draws a token (the same distribution as torch.multinomial)
            plain = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config)
        assert shared.shape == plain.shape == (6, prompt_ids.size(1) + 6)
        assert torch.equal(shared, plain)


def test_inverse_cdf_sampling_draws_from_the_distribution_torch_multinomial_draws_from():
    from ladder_hf.generation import inverse_cdf_sampling

    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 2
    logits[0, 7] = float("-inf")  # a token that top-k / top-p filtering removed
    probs = torch.softmax(logits, -1)
    draws, original = 20000, torch.multinomial
    with inverse_cdf_sampling():
        samples = torch.cat([torch.multinomial(probs, 1) for _ in range(draws)], 1)
        assert samples.shape == (3, draws) and samples.dtype == torch.long
        assert torch.multinomial(probs[1], 1).shape == (1,)  # one distribution, as torch takes it
        assert torch.multinomial(probs, 2).shape == (3, 2)  # more than one sample: torch's own
        with pytest.raises(RuntimeError):
            torch.multinomial(torch.zeros(2, 5), 1)  # an invalid distribution keeps torch's error
    assert torch.multinomial is original
    assert not (samples[0] == 7).any()
    for row in range(3):
        counts = torch.bincount(samples[row], minlength=50).double()
        expected = probs[row].double() * draws
        seen = expected > 5  # Pearson's chi-square over the cells it is valid for
        chi2 = (((counts - expected) ** 2 / expected)[seen]).sum().item()
        # 99.9th percentile of chi-square with at most 49 degrees of freedom: ~85
        assert chi2 < 85, (row, chi2)


class SolvesOnly:
    """A backend that answers the integrands it knows correctly (sympy, on our own strings) and 0 to the rest."""

    model_name = "scripted"

    def __init__(self, integrands: set[str]):
        self.integrands, self.calls, self.asked = integrands, 0, []

    def generate(self, conversations, *, n=1, **kwargs):
        import sympy

        self.calls += 1
        out = []
        for conversation in conversations:
            integrand = re.search(r"∫\S* (.+) dx$", conversation[-1]["content"]).group(1)
            self.asked.append(integrand)
            answer = sympy.integrate(sympy.sympify(integrand), sympy.Symbol("x")) if integrand in self.integrands else 0
            out.append([f"<answer>{answer}</answer>"] * n)
        return out


def test_grow_to_model_level_grows_only_below_leaves_the_model_never_solves(tmp_path):
    from ladder_hf.dataset import read_nodes
    from ladder_hf.store import read_jsonl
    from ladder_hf.training_data import grow_to_model_level
    from ladder_hf.variants import SymbolicGenerator, generate_tree

    problems = [
        {"id": "p1", "integrand": "x**3*exp(2*x) + 4*x", "lower": "", "upper": ""},
        {"id": "p2", "integrand": "x**2*sin(3*x) + exp(x)", "lower": "", "upper": ""},
    ]
    held_out = [{"id": "t1", "integrand": "x**3*exp(2*x)", "lower": "", "upper": ""}]
    folder = str(tmp_path / "variants")
    before = generate_tree(problems, SymbolicGenerator(seed=0), 1, folder, protect=held_out, variants_per_node=3)
    leaves = [n for n in before if n["depth"] == 1]
    assert len(leaves) >= 2
    # the model solves one leaf of the tree (always) and nothing else
    backend = SolvesOnly({leaves[0]["integrand"]})
    store = str(tmp_path / "rates.jsonl")
    history = grow_to_model_level(
        problems, SymbolicGenerator(seed=0), folder, backend, rounds=2, samples=2, protect=held_out, store_path=store
    )
    nodes = [n for n in read_nodes(folder) if n.get("kept", True)]
    rates = {r["key"].split("|")[0]: r["solve_rate"] for r in read_jsonl(store)}
    assert rates[leaves[0]["integrand"]] == 1.0 and history[0]["always"] == 1
    assert history[0]["depth"] == 1 and history[0]["nodes"] == len(before) and len(nodes) > len(before)
    assert max(n["depth"] for n in nodes) == history[-1]["depth"] == 3
    # every node is measured once, with the number of samples asked for
    assert sorted(rates) == sorted({n["integrand"] for n in nodes}) and {r["draws"] for r in read_jsonl(store)} == {2}
    assert sorted(backend.asked) == sorted(rates)
    by_id = {n["id"]: n for n in nodes}
    grown = [n for n in nodes if n["depth"] > 1]
    for node in grown:  # grown by the rounds: only below never-solved nodes, the guard still on
        assert rates[by_id[node["parent_id"]]["integrand"]] == 0.0
        assert node["integrand"].replace(" ", "") != "x**3*exp(2*x)"
    assert not [n for n in grown if n["parent_id"] == leaves[0]["id"]]
    assert {n["parent_id"] for n in grown if n["depth"] == 2} <= {n["id"] for n in leaves[1:]}
    assert sum(r["added"] for r in history) == len(nodes) - len(before)
    # a rerun with no rounds left samples nothing: the store holds every rate
    again = SolvesOnly(set())
    final = grow_to_model_level(
        problems, SymbolicGenerator(seed=0), folder, again, rounds=0, samples=2, protect=held_out, store_path=store
    )
    assert final[-1]["nodes"] == len(nodes) and again.calls == 0


def test_a_bf16_cpu_run_samples_from_a_bf16_copy_refreshed_after_each_optimizer_step(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from trl import GRPOConfig

    from ladder_hf.trainer import LadderGRPOTrainer

    def reward(completions, **_):
        return [float(len(str(c)) % 3) for c in completions]  # varies within a group, so the weights move

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=True,
        activation_checkpointing=False,
    )
    trainer = LadderGRPOTrainer(
        model=tiny_model_dir, reward_funcs=reward, args=args, train_dataset=Dataset.from_dict({"prompt": ["a", "b"]})
    )
    model = trainer.accelerator.unwrap_model(trainer.model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.train()

    copy = trainer._sampler_copy
    assert copy is not model and "forward" not in vars(copy)  # no autocast wrapper: the copy runs in bf16
    assert all(p.dtype is torch.bfloat16 for p in copy.parameters())
    assert all(p.dtype is torch.float32 for p in model.parameters())  # the trained weights stay float32
    # step 2 sampled after step 1's update: the copy holds the weights between the two steps
    assert trainer._sampler_step == 1
    after = dict(model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert any(not torch.equal(p, before[n].to(torch.bfloat16)) for n, p in copy.named_parameters())
    # a float32 run samples from the model itself
    trainer.args.bf16 = False
    assert trainer._bf16_sampler(model) is model


def test_bf16_curves_calls_a_difference_noise_only_when_its_interval_holds_zero():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bf16_curves.py"
    spec = importlib.util.spec_from_file_location("bf16_curves", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def runs(float32: list[float], bf16: list[float]) -> dict:
        return {"float32-seed0": [{"r": v} for v in float32], "bf16-seed0": [{"r": v} for v in bf16]}

    same = module.last_window_gap(runs([0.1, 0.2, 0.1, 0.2], [0.2, 0.1, 0.2, 0.1]), "r", 4)
    assert same["difference"] == pytest.approx(0.0) and same["low"] < 0.0 < same["high"]
    apart = module.last_window_gap(runs([0.1, 0.2, 0.1, 0.2], [0.9, 1.0, 0.9, 1.0]), "r", 4)
    assert apart["difference"] == pytest.approx(0.8) and apart["low"] > 0.0
    # only the last `window` steps count: runs that differ early and agree late are the same
    late = module.last_window_gap(runs([0.0, 0.0, 0.1, 0.2], [5.0, 5.0, 0.2, 0.1]), "r", 2)
    assert late["difference"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("bf16", "use_cpu", "native", "expected"),
    [
        (True, True, False, "WARNING: PyTorch emulates it"),
        (False, True, True, "INFO: `bf16: true` made a GRPO step"),
        (True, True, True, None),  # bf16 where it is native: nothing to say
        (False, True, False, None),  # float32 where bf16 would be emulated: the right choice
        (True, False, False, None),  # a GPU run: the CPU's instructions do not matter
    ],
)
def test_a_cpu_run_is_told_what_bf16_does_on_its_cpu(caplog, bf16, use_cpu, native, expected):
    from ladder_hf.grpo import _advise_on_cpu_bf16

    with caplog.at_level("INFO", logger="ladder_hf.grpo"):
        _advise_on_cpu_bf16(bf16, use_cpu, native)
    said = [f"{r.levelname}: {r.getMessage()}" for r in caplog.records if r.name == "ladder_hf.grpo"]
    if expected is None:
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith(expected.split(":")[0]) and expected.split(": ")[1] in said[0]


@pytest.mark.parametrize(
    ("bf16", "use_cpu", "configured", "expected"),
    [
        (True, True, None, "ladder_grouped_eager"),  # SDPA's CPU kernel is the slow one in bf16
        (True, True, "sdpa", "sdpa"),  # what a config names is kept
        (False, True, None, None),  # float32: SDPA is the faster one
        (True, False, None, None),  # a GPU run
    ],
)
def test_a_bf16_cpu_run_uses_grouped_eager_attention_unless_its_config_names_one(
    tiny_model_dir, bf16, use_cpu, configured, expected
):
    from transformers import AutoModelForCausalLM

    from ladder_hf.grpo import _cpu_bf16_attention

    chosen = _cpu_bf16_attention(bf16, use_cpu, configured)
    assert chosen == expected
    if chosen is not None:  # a name transformers knows, as TRL will load the model with it
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=chosen)
        assert model.config._attn_implementation == chosen
