"""``ladder-hf``: the project's one command line.

Each subcommand lives beside the code it drives and owns its own argparse parser; this module
only dispatches, so ``ladder-hf --help`` stays fast (nothing heavy is imported until needed).

    ladder-hf model                      # convert/cache the embedded model, print its path
    ladder-hf variants generate ...      # build variant trees      (ladder_hf.variants)
    ladder-hf variants push DIR ...      # publish a versioned Hub dataset
    ladder-hf evaluate ...               # Integration Bee evaluation (ladder_hf.evaluation)
    ladder-hf register-metric            # make evaluate.load("integration_bee") work by name (ladder_hf.metrics)
    ladder-hf train --config ...         # LADDER GRPO training      (ladder_hf.grpo)
    ladder-hf ttrl --config ...          # test-time RL              (ladder_hf.ttrl)
    ladder-hf demo                       # the whole pipeline, end to end (ladder_hf.demo)

Everyday mistakes (a missing file, an unknown problem set, a refused output folder) end with one line
on stderr and exit code 2; ``--debug`` (anywhere on the line) or ``LADDER_HF_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable

# What a user's typo raises (our own checks raise these with a message that names the thing and the fix);
# anything else is a bug and keeps its traceback.
EVERYDAY_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, ImportError)

# name -> (module, help). Each module exposes ``main(argv: list[str] | None) -> int | None``.
COMMANDS: dict[str, tuple[str, str]] = {
    "model": ("ladder_hf.models_cli", "convert and cache the embedded default model; print its path"),
    "variants": ("ladder_hf.variants.cli", "generate variant trees / push them as a versioned Hub dataset"),
    "evaluate": ("ladder_hf.evaluation", "evaluate a model on Integration Bee problems"),
    "register-metric": ("ladder_hf.metrics", 'make evaluate.load("integration_bee") find the metric by name'),
    "train": ("ladder_hf.grpo", "LADDER training with TRL's GRPOTrainer (same as recipes/grpo.py)"),
    "ttrl": ("ladder_hf.ttrl", "test-time reinforcement learning (same as recipes/ttrl.py)"),
    "demo": ("ladder_hf.demo", "run LADDER end to end on the embedded model and write a report"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="ladder-hf",
        description="LADDER and TTRL for the Hugging Face stack.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()),
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command", help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("--version", action="version", version=_version())
    if not argv or argv[0] in ("-h", "--help") or argv[0] == "--version":
        parser.parse_args(argv or ["--help"])
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        parser.error(f"unknown command {command!r}; choose from {', '.join(COMMANDS)}")
    debug = "--debug" in rest or os.environ.get("LADDER_HF_DEBUG") == "1"
    rest = [a for a in rest if a != "--debug"]

    def dispatch() -> int | None:
        module = importlib.import_module(COMMANDS[command][0])
        _check_config_file(command, rest)
        return module.main(rest)

    # argparse names a parser built without prog= (TRL's TrlParser for train/ttrl) after sys.argv[0]:
    # make its usage line name the subcommand, as the other subcommands' parsers do
    saved_argv = list(sys.argv)
    sys.argv[:1] = [f"ladder-hf {command}"]
    try:
        return run_guarded(f"ladder-hf {command}", command, rest, dispatch, debug=debug)
    finally:
        sys.argv[:] = saved_argv


def run_guarded(
    prog: str, command: str, argv: list[str], run: Callable[[], int | None], debug: bool | None = None
) -> int:
    """Run a command the way ``ladder-hf`` does: the one-request Hub endpoint check on ``argv`` first, then
    ``run()``; an everyday error (and a Hub that cannot be reached) ends as one line ``<prog>: error: ...`` on
    stderr and exit code 2. The recipes (``recipes/grpo.py``) run through it too.

    Args:
        prog: the name the error line starts with (``ladder-hf train``, ``recipes/grpo.py``).
        command: which command's flags ``argv`` holds (``train`` reads ``--config`` for Hub ids too).
        argv: the command's arguments, as parsed by ``run``.
        run: does the work; it should import huggingface_hub/datasets itself, after the check.
        debug: re-raise with the traceback instead (default: ``LADDER_HF_DEBUG=1``).

    Returns:
        ``run()``'s exit code (``None`` counts as 0), or 2 after printing the error line.
    """
    if debug is None:
        debug = os.environ.get("LADDER_HF_DEBUG") == "1"
    try:
        # before the command imports huggingface_hub/datasets: they read the offline switches then
        _check_hub(command, argv)
        result = run()
    except SystemExit as done:
        # a command's own exit with a message (argparse exits with a number, having printed usage)
        if debug or not isinstance(done.code, str):
            raise
        message = done.code
        if message.startswith(prog) and ": " in message:
            message = message.split(": ", 1)[1]  # the command named itself already
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except Exception as err:
        message = _hub_unreachable(err)
        if message is None and isinstance(err, EVERYDAY_ERRORS):
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        if debug or message is None:
            raise
        hint = "--debug" if prog.startswith("ladder-hf") else "LADDER_HF_DEBUG=1"  # --debug is TRL's in recipes
        print(f"{prog}: error: {message} ({hint} shows the traceback)", file=sys.stderr)
        return 2
    return int(result or 0)


def _check_config_file(command: str, argv: list[str]) -> None:
    """``train``/``ttrl``: name a missing ``--config`` file and an unknown reward name up front; the
    recipes reach both only after growing data or loading a model, minutes in."""
    if command not in ("train", "ttrl"):
        return
    path, rewards = _flag_value(argv, "--config"), _flag_value(argv, "--reward_funcs", "--reward-funcs")
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(
            f"config file {path!r} not found; pass --config with a YAML file, e.g. recipes/configs/smollm2_cpu.yaml"
        )
    if rewards is None and path is not None:
        import yaml

        with open(path, encoding="utf-8") as file:
            config = yaml.safe_load(file)
        rewards = config.get("reward_funcs") if isinstance(config, dict) else None
    if rewards:
        from ladder_hf.rewards import get_reward_funcs

        get_reward_funcs(rewards)  # an unknown name raises ValueError listing the known ones


# Flags (and --config YAML keys) whose value may be a Hub repo id; the dashed spellings are aliases.
_HUB_FLAGS = ("model_name_or_path", "model", "problem_set", "problems", "dataset_name", "eval_set", "repo_id", "repo")
_PUSH_FLAGS = ("hub_model_id", "repo_id", "repo")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# A down endpoint refuses at once; a silent one costs this much, not huggingface_hub's ~30 s of retries.
HUB_PROBE_TIMEOUT = 3.0


class HubUnreachableError(ConnectionError):
    """The Hub endpoint did not answer the probe; the message is the one line to print."""


# Set when the probe found the endpoint down, so an error reached offline names the endpoint, not HF_HUB_OFFLINE.
_endpoint_down: str | None = None


def _truthy(value: object) -> bool:
    return str(value).strip().upper() in {"1", "ON", "YES", "TRUE"}


def _check_hub(command: str, argv: list[str]) -> None:
    """When the command line names a Hub repo and the Hub is not switched off, check the endpoint once with
    a short timeout. Down: a push is refused at once (before any training); anything else runs in offline
    mode, so cached files still work and a missing one fails in a second, not after the client's retries."""
    global _endpoint_down
    if _truthy(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "0"):
        return
    values = _hub_values(argv)
    if command == "train" or command == "ttrl":
        values.update(_config_hub_values(_flag_value(argv, "--config")))
    pushing = (command == "variants" and argv[:1] == ["push"]) or _truthy(values.pop("push_to_hub", False))
    repos = [str(v) for k, v in values.items() if k != "push_to_hub" and _is_repo_id(v)]
    if not repos and not pushing:
        return
    given = _flag_value(argv, "--endpoint") if command == "variants" else None  # `variants push --endpoint URL`
    endpoint = (given if isinstance(given, str) else os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip(
        "/"
    )
    if _endpoint_reachable(endpoint):
        return
    target = next((str(values[k]) for k in _PUSH_FLAGS if _is_repo_id(values.get(k))), None)
    if pushing:
        raise HubUnreachableError(
            f"cannot reach the Hub at {endpoint} to push{f' to {target!r}' if target else ''}; "
            "check the network or HF_ENDPOINT, or run without pushing and push later"
        )
    _endpoint_down = endpoint
    for switch in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        os.environ[switch] = "1"


def _hub_values(argv: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in (*_HUB_FLAGS, *_PUSH_FLAGS):
        value = _flag_value(argv, f"--{name}", f"--{name.replace('_', '-')}")
        if isinstance(value, list):
            value = next((v for v in value if _is_repo_id(v)), None)
        if value is not None:
            values[name] = value
    if any(a in ("--push_to_hub", "--push-to-hub") for a in argv):
        push = _flag_value(argv, "--push_to_hub", "--push-to-hub")
        values["push_to_hub"] = True if push is None or push == [] else push
    return values


def _config_hub_values(path: str | list[str] | None) -> dict[str, object]:
    if not isinstance(path, str) or not os.path.isfile(path):
        return {}  # _check_config_file names a missing file
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            config = yaml.safe_load(file)
    except (OSError, yaml.YAMLError):
        return {}  # the recipe's own parser reports a broken file
    if not isinstance(config, dict):
        return {}
    return {k: config[k] for k in (*_HUB_FLAGS, *_PUSH_FLAGS, "push_to_hub") if config.get(k) is not None}


def _is_repo_id(value: object) -> bool:
    # org/name that is not a local path nor a file name (a missing data file is named by its own check)
    return (
        isinstance(value, str)
        and _REPO_ID.fullmatch(value) is not None
        and not value.endswith((".json", ".jsonl", ".parquet", ".csv", ".yaml", ".yml"))
        and not os.path.exists(value)
    )


def _endpoint_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether anything answers HTTP at ``endpoint`` (any status counts: the clients judge the answer).
    One request, no retries; urllib honours the same proxy variables as the Hub clients."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except urllib.error.URLError as err:
        return isinstance(err.reason, ssl.SSLError)  # a TLS setup the clients may handle differently
    except (OSError, ValueError):
        return False
    return True


def _flag_value(argv: list[str], *flags: str) -> str | list[str] | None:
    # the value of the last --flag VALUE(S) / --flag=VALUE on the line (nargs="+" flags take every value)
    found = None
    for index, arg in enumerate(argv):
        name, _, inline = arg.partition("=")
        if name in flags:
            if inline:
                found = inline
            else:
                values = []
                for value in argv[index + 1 :]:
                    if value.startswith("--"):
                        break
                    values.append(value)
                found = values[0] if len(values) == 1 else values or None
    return found


def _hub_unreachable(err: BaseException) -> str | None:
    """One line for a Hub that cannot be reached (offline mode with files not cached, or an endpoint that is
    down), found anywhere in the exception's chain; ``None`` when the error is something else."""
    if isinstance(err, HubUnreachableError):
        return str(err)
    from huggingface_hub import constants, is_offline_mode
    from huggingface_hub.errors import LocalEntryNotFoundError

    chain: list[BaseException] = []
    while err is not None and err not in chain and len(chain) < 20:
        chain.append(err)
        err = err.__cause__ or err.__context__
    # transformers rewraps the Hub's error as a plain OSError; datasets as a builtin ConnectionError
    if not any(
        isinstance(e, (ConnectionError, LocalEntryNotFoundError)) or "couldn't connect" in str(e).lower() for e in chain
    ):
        return None
    what = _quoted_name(chain)
    if _endpoint_down:
        return (
            f"cannot reach the Hub at {_endpoint_down} for {what}; check the network or HF_ENDPOINT, "
            "or set HF_HUB_OFFLINE=1 to use only cached files"
        )
    if is_offline_mode():
        return (
            f"offline (HF_HUB_OFFLINE=1) and {what} is not in the local cache; download it once online, "
            "unset HF_HUB_OFFLINE, or pass a local path"
        )
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return (
        f"cannot reach the Hub at {endpoint} for {what}; check the network or HF_ENDPOINT, "
        "or set HF_HUB_OFFLINE=1 to use only cached files"
    )


def _quoted_name(chain: list[BaseException]) -> str:
    # the repo id as the libraries quote it ("Couldn't reach 'org/name' on the Hub"), when one of them does
    import re

    for e in chain:
        found = re.search(r"'([\w.-]+/[\w.-]+)'", str(e))
        if found and "://" not in found.group(1):
            return repr(found.group(1))
    return "a file it needs"


def _version() -> str:
    from ladder_hf import __version__

    return f"ladder-hf {__version__}"


if __name__ == "__main__":
    sys.exit(main())
