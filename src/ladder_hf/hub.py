"""Versioned, tagged dataset pushes to the Hugging Face Hub.

One version is one commit, tagged on that exact commit:

1. refuse at once, before touching anything, when the tag already exists (tags are never moved
   or overwritten);
2. build every file locally: parquet shards per config and split (``<config>/<split>-NNNNN-of-MMMMM.parquet``)
   and a README whose YAML ``configs:`` lists them (plus ``dataset_info`` with the features);
3. send them, together with deletions of whatever the previous version had and this one does not,
   in a single ``HfApi.create_commit`` whose ``parent_commit`` is the head we read in step 1, so a
   concurrent push makes it fail instead of mixing two versions;
4. tag the commit the server returned.

If anything fails before step 4 the branch and all tags are as they were: the Hub applies a
commit atomically, and uploaded LFS objects that no commit references are invisible. If only the
tag fails, the same call again finds nothing changed, makes no commit and tags the existing one.

Afterwards ``load_dataset(repo_id)`` reads the newest version and
``load_dataset(repo_id, revision=tag)`` reads exactly the rows of that version, forever.

Example:
    >>> from datasets import Dataset
    >>> from ladder_hf.hub import push_versioned
    >>> ds = Dataset.from_dict({"integrand": ["x**2"], "depth": [0]})
    >>> result = push_versioned({"all": ds}, "my-org/ladder-variants", "v1.0")  # doctest: +SKIP
    >>> result.commit_oid == HfApi().list_repo_refs(..., repo_type="dataset").tags[0].target_commit  # doctest: +SKIP
    True
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import datasets
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, DatasetCard, DatasetCardData, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

REPO_TYPE = "dataset"
DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024
_FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*\n", re.S)
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


class TagExistsError(ValueError):
    """The version tag is already on the Hub; nothing was changed."""


class PushError(RuntimeError):
    """A push did not complete; the message says what state the repo is in."""


@dataclass
class PushResult:
    """What :func:`push_versioned` published."""

    repo_id: str
    tag: str
    commit_oid: str
    commit_url: str
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    files: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Pure helpers: normalising inputs, laying out files, writing the card metadata.
# --------------------------------------------------------------------------------------------
def normalize_configs(data) -> dict[str, datasets.DatasetDict]:
    """``Dataset`` | ``DatasetDict`` | ``{config: Dataset | DatasetDict}`` -> ``{config: DatasetDict}``.

    A bare ``Dataset`` becomes the ``train`` split; a bare ``DatasetDict`` the ``default`` config.
    """
    if isinstance(data, datasets.Dataset):
        return {"default": datasets.DatasetDict({"train": data})}
    if isinstance(data, datasets.DatasetDict):
        return {"default": data}
    if isinstance(data, Mapping):
        out = {}
        for name, value in data.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-.]*", str(name)):
                raise ValueError(f"invalid config name {name!r}")
            if isinstance(value, datasets.Dataset):
                value = datasets.DatasetDict({"train": value})
            if not isinstance(value, datasets.DatasetDict):
                raise TypeError(f"config {name!r}: expected a Dataset or DatasetDict, got {type(value).__name__}")
            out[str(name)] = value
        if not out:
            raise ValueError("nothing to push: no configs")
        return out
    raise TypeError(f"expected a Dataset, DatasetDict or a dict of them, got {type(data).__name__}")


def config_dir(config: str) -> str:
    """The repo folder of a config's shards (``data`` for ``default``, as ``push_to_hub`` does)."""
    return "data" if config == "default" else config


def shard_count(dataset: datasets.Dataset, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> int:
    """How many parquet shards a split gets (at least one, so empty splits still exist)."""
    nbytes = dataset.data.nbytes if dataset.num_rows else 0
    return max(1, min(dataset.num_rows or 1, math.ceil(nbytes / max_shard_bytes)))


def write_shards(
    configs: Mapping[str, datasets.DatasetDict], out_dir: str, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
) -> list[str]:
    """Write ``<config>/<split>-NNNNN-of-MMMMM.parquet`` files under ``out_dir``; return repo paths."""
    paths = []
    for config, splits in configs.items():
        for split, ds in splits.items():
            n = shard_count(ds, max_shard_bytes)
            for i in range(n):
                rel = f"{config_dir(config)}/{split}-{i:05d}-of-{n:05d}.parquet"
                os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
                ds.shard(num_shards=n, index=i, contiguous=True).to_parquet(os.path.join(out_dir, rel))
                paths.append(rel)
    return paths


def card_metadata(
    configs: Mapping[str, datasets.DatasetDict], default_config: str | None = None, extra: Mapping | None = None
) -> DatasetCardData:
    """The README YAML: ``configs:`` (data files per split, the default marked) and ``dataset_info``."""
    configs = normalize_configs(configs)
    default_config = default_config or ("default" if "default" in configs else next(iter(configs)))
    if default_config not in configs:
        raise ValueError(f"default config {default_config!r} is not among {list(configs)}")
    card_data = DatasetCardData(**dict(extra or {}))
    entries = []
    for config, splits in configs.items():
        entry: dict = {"config_name": config}
        if config == default_config:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": f"{config_dir(config)}/{s}-*"} for s in splits]
        entries.append(entry)
    # Default first: the Hub viewer and load_dataset both honour `default: true`, people read top-down.
    entries.sort(key=lambda e: (not e.get("default", False), e["config_name"]))
    card_data["configs"] = entries
    infos = DatasetInfosDict()
    for config, splits in configs.items():
        first = next(iter(splits.values()))
        info = datasets.DatasetInfo(features=first.features)
        info.splits = datasets.SplitDict()
        for split, ds in splits.items():
            info.splits.add(datasets.SplitInfo(name=split, num_bytes=ds.data.nbytes, num_examples=ds.num_rows))
        infos[config] = info
    infos.to_dataset_card_data(card_data)
    return card_data


def render_card(card: str | DatasetCard | None, metadata: DatasetCardData, tag: str, repo_id: str) -> str:
    """Merge our metadata into ``card`` (markdown, possibly with its own YAML header) and render it."""
    text = str(card) if isinstance(card, DatasetCard) else (card or default_card_body(repo_id, tag))
    merged: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        merged = yaml.safe_load(match.group(1)) or {}
        if not isinstance(merged, dict):
            raise ValueError("the card's YAML header must be a mapping")
        text = text[match.end() :]
    merged.update(metadata.to_dict())
    return f"---\n{DatasetCardData(**merged).to_yaml()}\n---\n\n{text.lstrip()}"


def default_card_body(repo_id: str, tag: str) -> str:
    return f"# {repo_id}\n\nVersion `{tag}`.\n\n{usage_section(repo_id, tag)}"


def usage_section(repo_id: str, tag: str, config: str | None = None) -> str:
    arg = f', "{config}"' if config else ""
    return (
        "## Usage\n\n"
        "```python\n"
        "from datasets import load_dataset\n\n"
        f'latest = load_dataset("{repo_id}"{arg})\n'
        f'pinned = load_dataset("{repo_id}"{arg}, revision="{tag}")  # exactly this version, forever\n'
        "```\n"
    )


# --------------------------------------------------------------------------------------------
# The push.
# --------------------------------------------------------------------------------------------
def _existing_tags_and_head(api: HfApi, repo_id: str, branch: str) -> tuple[dict[str, str], str | None, bool]:
    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        return {}, None, False
    tags = {t.name: t.target_commit for t in refs.tags}
    head = next((b.target_commit for b in refs.branches if b.name == branch), None)
    return tags, head, True


def push_versioned(
    data,
    repo_id: str,
    tag: str,
    card: str | DatasetCard | None = None,
    *,
    private: bool = False,
    default_config: str | None = None,
    commit_message: str | None = None,
    tag_message: str | None = None,
    branch: str = "main",
    keep: Sequence[str] = (".gitattributes",),
    card_metadata_extra: Mapping | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> PushResult:
    """Publish ``data`` as version ``tag`` of the dataset repo ``repo_id``: one commit, tagged.

    Args:
        data: a ``Dataset`` (-> config ``default``, split ``train``), a ``DatasetDict`` or
            ``{config_name: Dataset | DatasetDict}``.
        repo_id: ``org/name``; created (``private`` honoured) when missing.
        tag: the version, e.g. ``"v1.0"``; refused with :class:`TagExistsError` if it exists.
        card: README markdown (may carry its own YAML header, which is kept and extended) or a
            ``DatasetCard``; ``configs:`` and ``dataset_info`` are always written by us.
        default_config: the config ``load_dataset(repo_id)`` returns (first one by default).
        keep: glob patterns of files in the repo that the version commit must not delete;
            everything else that this version does not write is removed, so each version is
            exactly its own data.
        endpoint, token: forwarded to ``HfApi`` (default: ``HF_ENDPOINT`` / the saved token).

    Returns:
        :class:`PushResult` with the tagged commit's oid.

    Example:
        >>> push_versioned({"all": ds, "roots": roots}, "org/ladder-variants", "v1.1")  # doctest: +SKIP
        PushResult(repo_id='org/ladder-variants', tag='v1.1', commit_oid='3f5c...', ...)
    """
    if not _TAG_RE.match(tag or ""):
        raise ValueError(f"invalid tag {tag!r}: use letters, digits, '.', '-', '_' (e.g. v1.0)")
    configs = normalize_configs(data)
    api = HfApi(endpoint=endpoint, token=token)

    # 1. Refuse before any side effect.
    tags, head, exists = _existing_tags_and_head(api, repo_id, branch)
    if tag in tags:
        raise TagExistsError(
            f"{repo_id} already has tag {tag!r} (commit {tags[tag]}); tags are never moved: choose a new version"
        )

    with tempfile.TemporaryDirectory(prefix="ladder-hf-push-") as tmp:
        # 2. Everything is built locally before the network sees a byte of this version.
        paths = write_shards(configs, tmp, max_shard_bytes)
        metadata = card_metadata(configs, default_config, card_metadata_extra)
        readme = render_card(card, metadata, tag, repo_id)
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(readme)
        new_files = {*paths, "README.md"}

        if not exists:
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
            tags, head, _ = _existing_tags_and_head(api, repo_id, branch)
            if tag in tags:  # created concurrently by someone else, with this tag already
                raise TagExistsError(f"{repo_id} already has tag {tag!r}; nothing was pushed")
        if head is None:
            raise PushError(f"{repo_id} has no branch {branch!r}; create it first")

        old_files = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head)
        deletions = [
            CommitOperationDelete(path_in_repo=p)
            for p in old_files
            if p not in new_files and not any(fnmatch.fnmatch(p, pat) for pat in keep)
        ]
        additions = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=os.path.join(tmp, p)) for p in sorted(new_files)
        ]

        # 3. One atomic commit on top of the head we checked.
        info = api.create_commit(
            repo_id,
            operations=[*additions, *deletions],
            commit_message=commit_message or f"Publish {tag}",
            commit_description=f"Version {tag}: " + ", ".join(f"{c} ({', '.join(s)})" for c, s in configs.items()),
            repo_type=REPO_TYPE,
            revision=branch,
            parent_commit=head,
        )

    # A re-run after a failed tag finds nothing to change: create_commit then returns the head,
    # which must not already be another version.
    if info.oid == head:
        taken = [name for name, oid in tags.items() if oid == head]
        if taken:
            raise TagExistsError(f"{repo_id}@{head} is already version {taken[0]!r}: nothing changed, no tag created")

    # 4. Tag exactly that commit.
    last_error: Exception | None = None
    for _ in range(3):
        try:
            api.create_tag(
                repo_id,
                tag=tag,
                tag_message=tag_message or f"{repo_id} {tag}",
                revision=info.oid,
                repo_type=REPO_TYPE,
                exist_ok=False,
            )
            break
        except HfHubHTTPError as err:
            last_error = err
            if err.response is not None and err.response.status_code == 409:
                raise TagExistsError(f"tag {tag!r} appeared on {repo_id} while pushing commit {info.oid}") from err
    else:
        raise PushError(
            f"commit {info.oid} is on {repo_id}@{branch} but tagging it {tag!r} failed ({last_error}); "
            "run the same push again to tag it (it will not make a second commit)"
        ) from last_error

    rows = {c: {s: ds.num_rows for s, ds in splits.items()} for c, splits in configs.items()}
    return PushResult(repo_id, tag, info.oid, info.commit_url, rows, sorted(new_files))


# --------------------------------------------------------------------------------------------
# Variant trees.
# --------------------------------------------------------------------------------------------
def variant_statistics(nodes: Sequence[dict]) -> dict:
    """Counts for the card: kept rows per depth / generator / kind, and quality-control counts.

    ``nodes`` are raw nodes.jsonl records (rejected ones included when the generator keeps them).

    Example:
        >>> variant_statistics([{"id": "a", "depth": 0, "generator": "root"}])["per_depth"]
        {0: 1}
    """
    from ladder_hf.dataset import node_to_row

    rows = [node_to_row(n) for n in nodes]
    kept = [r for r in rows if r["kept"]]

    def count(key, source) -> dict:
        def label(r):
            return r[key] or ("root" if (r["depth"] or 0) == 0 else "unknown")

        return dict(sorted(Counter(label(r) for r in source).items(), key=str))

    def has_status(r, status) -> bool:
        return r["qc_status"] == status

    variants = [r for r in rows if (r["depth"] or 0) > 0]
    qc = {
        "nodes": len(rows),
        "kept": len(kept),
        "rejected": len(rows) - len(kept),
        "unparsable": sum(has_status(r, "unparsable") for r in variants),
        "numerically_insane": sum(r["numeric_sane"] is False or has_status(r, "not_sane") for r in variants),
        "duplicates": sum(bool(r["duplicate_of"]) or has_status(r, "duplicate") for r in variants),
        # Roots of TTRL trees are flagged with the test problem they are; only variants count here.
        "contaminated": sum(bool(r["contaminated_with"]) or has_status(r, "contaminated") for r in variants),
        "sympy_solvable": sum(r["sympy_solvable"] is True for r in kept),
        "sympy_unsolved": sum(r["sympy_solvable"] is False for r in kept),
    }
    statuses = Counter(r["qc_status"] for r in rows if r["qc_status"])
    if statuses:
        qc["by_status"] = dict(sorted(statuses.items()))
    return {
        "per_depth": dict(sorted(Counter(r["depth"] or 0 for r in kept).items())),
        "per_generator": count("generator", kept),
        "per_kind": count("kind", kept),
        "qc": qc,
    }


def _table(title: str, counts: Mapping, key_name: str) -> str:
    lines = [f"| {key_name} | rows |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in counts.items()]
    return f"**{title}**\n\n" + "\n".join(lines) + "\n"


def variants_card(
    repo_id: str, tag: str, stats: Mapping, rows: Mapping[str, int], generation: Mapping | None = None
) -> str:
    """README markdown for a variant-tree dataset: what it is, configs, statistics, attribution."""
    config_lines = "\n".join(f"| `{c}` | {n} |" for c, n in rows.items())
    qc = stats.get("qc", {})
    qc_lines = "\n".join(f"| {k} | {v} |" for k, v in qc.items() if not isinstance(v, Mapping))
    by_status = qc.get("by_status") or {}
    status_block = _table("Nodes by QC status", by_status, "status") if by_status else ""
    generation = dict(generation or {})
    funnel = generation.pop("qc", None)
    funnel_block = ""
    if isinstance(funnel, Mapping) and funnel:
        funnel_block = (
            "**Quality-control funnel** (candidates surviving each stage: generated by the model or the "
            "mutations, parsed by the safe parser, numerically sane, numerically unique, not contaminated, kept)\n\n"
            + "| stage | count |\n|---|---:|\n"
            + "\n".join(f"| {k} | {v} |" for k, v in funnel.items())
            + "\n\n"
        )
    gen_block = ""
    if generation:
        gen_block = "## Generation run\n\n```json\n" + json.dumps(generation, indent=2, sort_keys=True, default=str)
        gen_block += "\n```\n\n"
    return f"""# {repo_id}

Variant trees of integration problems, in the style of LADDER (Simonds & Yoshiyama, 2025,
[arXiv:2503.00735](https://arxiv.org/abs/2503.00735)): each root problem has easier or equivalent
variants, recursively, each checked by quality control (numeric sanity on sample points,
numerical deduplication, a difficulty estimate, whether sympy finds an antiderivative, and a
contamination guard against protected test problems). Built and published with
[ladder_hf](https://arxiv.org/abs/2503.00735) (`ladder-hf variants push`).

Version **`{tag}`**. Every version is one commit with its own git tag; a tag is never moved.

{usage_section(repo_id, tag)}
## Configs

| config | rows |
|---|---:|
{config_lines}

`all` is the default. `variants` is the LADDER training set (every kept variant, roots
excluded); `depth_N` holds the variants N steps below their root; `roots` the original problems.

## Statistics

{_table("Kept rows per depth", stats.get("per_depth", {}), "depth")}
{_table("Kept rows per generator", stats.get("per_generator", {}), "generator")}
{_table("Kept rows per kind", stats.get("per_kind", {}), "kind")}
**Quality control**

| check | count |
|---|---:|
{qc_lines}

{status_block}
{funnel_block}{gen_block}## Columns

`id`, `root_id`, `parent_id`, `depth`, `integrand` (sympy syntax in `x`), `lower`/`upper` (`""` for
an indefinite integral), `kind` (easier/equivalent), `transformations` (the suggested
transformations, or the sympy mutations applied), `persona`, `temperature`, `generator` (a model
id or `symbolic`), `difficulty`, `difficulty_delta` (versus the parent), `sympy_solvable`, `sympy_antiderivative`,
`source_problem` (the bundled problem id at the root of the tree), `raw` (the text as written), QC
fields (`kept`, `qc_status`, `qc_reason`, `numeric_sane`, `duplicate_of`, `contaminated_with`)
and `extra` (any other field the generator recorded, as JSON).

## Attribution

- Method: LADDER, Toby Simonds and Akira Yoshiyama, "LADDER: Self-Improving LLMs Through Recursive
  Problem Decomposition", arXiv:2503.00735 (2025).
- Root problems from the MIT Integration Bee qualifying exams are (c) MIT Integration Bee,
  reproduced for research with attribution; see `source_problem` for each row's origin.
- Variants written by a model carry that model's id in `generator`; its licence applies to them.

## Citation

```bibtex
@misc{{simonds2025ladder,
  title={{LADDER: Self-Improving LLMs Through Recursive Problem Decomposition}},
  author={{Toby Simonds and Akira Yoshiyama}},
  year={{2025}},
  eprint={{2503.00735}},
  archivePrefix={{arXiv}},
}}
```
"""


# Files generate_tree may leave next to nodes.jsonl that describe the run (stats, QC funnel).
_RUN_SUMMARY_FILES = ("stats.json", "qc.json", "summary.json", "run.json", "meta.json")


def read_run_summary(folder: str) -> dict:
    """Whatever run summary JSON files the variants folder has, merged by file name."""
    out = {}
    for name in _RUN_SUMMARY_FILES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    out[name[: -len(".json")]] = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
    return out


def push_variants(
    folder: str,
    repo_id: str,
    tag: str,
    private: bool = False,
    *,
    configs: Sequence[str] | None = None,
    include_rejected: bool = False,
    card: str | None = None,
    cache_dir: str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    **push_kwargs,
) -> PushResult:
    """Publish a variants folder (``nodes.jsonl``) as version ``tag`` of ``repo_id``.

    Each :class:`~ladder_hf.dataset.LadderDataset` config with rows becomes a Hub config (``all``
    is the default; ``rejected``, the QC audit trail, only with ``include_rejected``); the card
    carries the statistics (rows per depth, per generator, QC counts and funnel) and attribution.
    Same guarantees as :func:`push_versioned`.

    Example:
        >>> push_variants("variants/mit-train", "my-org/ladder-variants", "v1.0")  # doctest: +SKIP
    """
    from ladder_hf.dataset import REJECTED_FILE, config_names, load_ladder_dataset, read_nodes

    nodes = read_nodes(folder)
    if not nodes:
        raise ValueError(f"{folder!r} has no nodes to publish")
    rejected_path = os.path.join(folder, REJECTED_FILE)
    rejected = read_nodes(rejected_path) if os.path.exists(rejected_path) else []
    default_configs = [c for c in config_names() if c != "rejected" or include_rejected]
    wanted = list(configs) if configs else default_configs
    built: dict[str, datasets.Dataset] = {}
    for name in wanted:
        ds = load_ladder_dataset(folder, name, cache_dir=cache_dir)
        # Empty slices (depth_4 of a depth-2 tree) would only confuse people browsing the Hub.
        if ds.num_rows or name == "all":
            built[name] = ds
    stats = variant_statistics([*nodes, *rejected])
    rows = {name: ds.num_rows for name, ds in built.items()}
    summary = read_run_summary(folder)
    run = summary.get("run")
    if isinstance(run, dict) and isinstance(run.get("problems"), list):
        # The root ids are in the data; the card only needs how many there were.
        summary["run"] = {**run, "problems": len(run["problems"])}
    text = card or variants_card(repo_id, tag, stats, rows, summary or None)
    extra = {
        "license": "apache-2.0",
        "language": ["en"],
        "pretty_name": "LADDER variant trees",
        "task_categories": ["text-generation"],
        "tags": ["ladder", "ttrl", "integration", "calculus", "synthetic", "math", "reinforcement-learning"],
        "size_categories": [_size_category(rows.get("all", 0))],
    }
    return push_versioned(
        built,
        repo_id,
        tag,
        text,
        private=private,
        default_config="all" if "all" in built else None,
        card_metadata_extra=extra,
        endpoint=endpoint,
        token=token,
        **push_kwargs,
    )


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"
