"""Versioned, tagged dataset pushes to the Hugging Face Hub.

One version is one commit, tagged on that exact commit:

1. refuse at once, before touching anything, when the tag already exists (tags are never moved
   or overwritten);
2. build every file locally: parquet shards per config and split (``<config>/<split>-NNNNN-of-MMMMM.parquet``)
   and the README: the caller's ``DatasetCard`` (or markdown) with ``configs:`` listing the shards and
   ``dataset_info`` (features, row counts) added to its front matter;
3. send them, together with deletions of whatever the previous version had and this one does not,
   in a single ``HfApi.create_commit`` whose ``parent_commit`` is the head we read in step 1, so a
   concurrent push makes it fail instead of mixing two versions;
4. tag the commit the server returned.

If anything fails before step 4 the branch and all tags are as they were: the Hub applies a
commit atomically, and uploaded LFS objects that no commit references are invisible. If only the
tag fails, the same call again finds nothing changed, makes no commit and tags the existing one.

Afterwards ``load_dataset(repo_id)`` reads the newest version and
``load_dataset(repo_id, revision=tag)`` reads exactly the rows of that version, forever.

This module knows nothing about what the data is: the card of a variant tree, and the push of a
variants folder, live in :mod:`ladder_hf.variants.card`.

Example:
    >>> from datasets import Dataset
    >>> from ladder_hf.hub import push_versioned
    >>> ds = Dataset.from_dict({"integrand": ["x**2"], "depth": [0]})
    >>> result = push_versioned({"all": ds}, "my-org/ladder-variants", "v1.0")  # doctest: +SKIP
    >>> result.tag, result.rows  # doctest: +SKIP
    ('v1.0', {'all': {'train': 1}})
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import datasets
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


def card_metadata(configs: Mapping[str, datasets.DatasetDict], default_config: str | None = None) -> DatasetCardData:
    """The README YAML: ``configs:`` (data files per split, the default marked) and ``dataset_info``."""
    configs = normalize_configs(configs)
    default_config = default_config or ("default" if "default" in configs else next(iter(configs)))
    if default_config not in configs:
        raise ValueError(f"default config {default_config!r} is not among {list(configs)}")
    card_data = DatasetCardData()
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


def as_card(card: str | DatasetCard | None, repo_id: str = "", tag: str = "") -> DatasetCard:
    """``card`` as a new ``DatasetCard`` (the caller's object is never changed).

    Markdown is parsed with its YAML front matter, if any; ``None`` is the generic card of
    :data:`DEFAULT_CARD_TEMPLATE` (a title, the version and how to load it).

    Example:
        >>> as_card("---\\nlicense: mit\\n---\\n# Bee problems\\n").data.license
        'mit'
        >>> as_card("# no front matter").text
        '# no front matter'
        >>> print(as_card(None, "org/bee", "v1.0").text.splitlines()[1])
        # org/bee
    """
    if card is None:
        return DatasetCard.from_template(
            DatasetCardData(), template_str=DEFAULT_CARD_TEMPLATE, repo_id=repo_id, tag=tag
        )
    text = str(card)
    if not _FRONT_MATTER.match(text):
        # An empty front matter instead of none: DatasetCard warns about a card without one.
        return DatasetCard(f"---\n\n---\n{text}")
    return DatasetCard(text)


def render_card(card: str | DatasetCard | None, metadata: DatasetCardData, tag: str, repo_id: str) -> str:
    """The README text: ``card`` (see :func:`as_card`) with ``metadata`` (:func:`card_metadata`) in its front matter.

    Our keys (``configs``, ``dataset_info``, and any other in ``metadata``) replace the card's own.

    Example:
        >>> from datasets import Dataset
        >>> meta = card_metadata({"all": Dataset.from_dict({"x": [1, 2]})})
        >>> readme = render_card("---\\nlicense: mit\\n---\\n# Data\\n", meta, "v1", "org/data")
        >>> card = DatasetCard(readme)
        >>> card.data.license, card.data.configs[0]["config_name"], card.text.strip()
        ('mit', 'all', '# Data')
    """
    out = as_card(card, repo_id, tag)
    for key, value in metadata.to_dict().items():
        out.data[key] = value
    return str(out)


# The card push_versioned writes when the caller gives none.
DEFAULT_CARD_TEMPLATE = """\
---
{{ card_data }}
---

# {{ repo_id }}

Version `{{ tag }}`.

## Usage

```python
from datasets import load_dataset

latest = load_dataset("{{ repo_id }}")
pinned = load_dataset("{{ repo_id }}", revision="{{ tag }}")  # exactly this version, forever
```
"""


# --------------------------------------------------------------------------------------------
# Push decisions: pure functions of what the repo has and what this version writes.
# --------------------------------------------------------------------------------------------
def check_tag(tag: str) -> str:
    """``tag`` if it is a usable version name, else ``ValueError``.

    Example:
        >>> check_tag("v1.0")
        'v1.0'
        >>> check_tag("v1 final")
        Traceback (most recent call last):
        ...
        ValueError: invalid tag 'v1 final': use letters, digits, '.', '-', '_' (e.g. v1.0)
    """
    if not _TAG_RE.match(tag or ""):
        raise ValueError(f"invalid tag {tag!r}: use letters, digits, '.', '-', '_' (e.g. v1.0)")
    return tag


def refuse_existing_tag(tags: Mapping[str, str], tag: str, repo_id: str) -> None:
    """Raise :class:`TagExistsError` when ``tag`` is already in ``tags`` (name -> commit): tags never move.

    Example:
        >>> refuse_existing_tag({"v1.0": "abc123"}, "v1.1", "org/data")  # a new version: fine
        >>> refuse_existing_tag({"v1.0": "abc123"}, "v1.0", "org/data")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ladder_hf.hub.TagExistsError: org/data already has tag 'v1.0' (commit abc123); tags are never moved: ...
    """
    if tag in tags:
        raise TagExistsError(
            f"{repo_id} already has tag {tag!r} (commit {tags[tag]}); tags are never moved: choose a new version"
        )


def files_to_delete(
    old_files: Sequence[str], new_files: Collection[str], keep: Sequence[str] = (".gitattributes",)
) -> list[str]:
    """Files of the previous version that this one does not write and no ``keep`` glob protects.

    Deleting them in the version commit means a config that disappeared leaves no stale rows.

    Example:
        >>> old = [".gitattributes", "README.md", "all/train-0.parquet", "depth_2/train-0.parquet"]
        >>> files_to_delete(old, ["README.md", "all/train-0.parquet"])
        ['depth_2/train-0.parquet']
        >>> files_to_delete(old, ["README.md"], keep=(".gitattributes", "depth_*"))
        ['all/train-0.parquet']
    """
    new = set(new_files)
    return [p for p in old_files if p not in new and not any(fnmatch.fnmatch(p, pat) for pat in keep)]


def refuse_unchanged(tags: Mapping[str, str], head: str | None, commit_oid: str, repo_id: str) -> None:
    """After the commit: raise :class:`TagExistsError` if it changed nothing and the head is already a version.

    ``create_commit`` returns the head itself when every file is unchanged (a re-run after a failed
    tag does that, and may then tag it); tagging a commit that is already a version would make two
    versions of one commit.

    Example:
        >>> refuse_unchanged({"v1.0": "aaa"}, "bbb", "ccc", "org/data")  # a new commit
        >>> refuse_unchanged({}, "bbb", "bbb", "org/data")  # nothing new, but the head is untagged: tag it
        >>> refuse_unchanged({"v1.0": "aaa"}, "aaa", "aaa", "org/data")
        Traceback (most recent call last):
        ...
        ladder_hf.hub.TagExistsError: org/data@aaa is already version 'v1.0': nothing changed, no tag created
    """
    if commit_oid != head:
        return
    taken = [name for name, oid in tags.items() if oid == head]
    if taken:
        raise TagExistsError(f"{repo_id}@{head} is already version {taken[0]!r}: nothing changed, no tag created")


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
        card: the dataset card: a ``DatasetCard`` (e.g. :func:`ladder_hf.variants.card.variants_card`)
            or README markdown, with or without YAML front matter, which is kept and extended;
            ``configs:`` and ``dataset_info`` are always written by us. ``None``: a generic card.
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
    check_tag(tag)
    configs = normalize_configs(data)
    api = HfApi(endpoint=endpoint, token=token)

    # 1. Refuse before any side effect.
    tags, head, exists = _existing_tags_and_head(api, repo_id, branch)
    refuse_existing_tag(tags, tag, repo_id)

    with tempfile.TemporaryDirectory(prefix="ladder-hf-push-") as tmp:
        # 2. Everything is built locally before the network sees a byte of this version.
        paths = write_shards(configs, tmp, max_shard_bytes)
        readme = render_card(card, card_metadata(configs, default_config), tag, repo_id)
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
        deletions = [CommitOperationDelete(path_in_repo=p) for p in files_to_delete(old_files, new_files, keep)]
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

    refuse_unchanged(tags, head, info.oid, repo_id)

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
