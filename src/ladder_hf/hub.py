"""Versioned, tagged dataset pushes to the Hugging Face Hub.

One version is one commit, tagged on that exact commit:

1. refuse at once, before touching anything, when the tag already exists (tags are never moved
   or overwritten); read the branch head, its file list and its README;
2. build every file locally: parquet shards per config and split (``<config>/<split>-NNNNN-of-MMMMM.parquet``)
   and the README: the caller's ``DatasetCard`` (or markdown) with ``configs:`` listing the shards and
   ``dataset_info`` (features, row counts) added to its front matter, merged into the README the repo
   already has (:func:`merge_readme`);
3. send them, together with deletions of the data files of *our* configs that this version no longer
   has, in a single ``HfApi.create_commit`` whose ``parent_commit`` is the head we read in step 1, so a
   concurrent push makes it fail instead of mixing two versions;
4. tag the commit the server returned.

Nothing is lost: a push replaces only what it owns (the data files its ``configs:`` entries point
at, those entries, the ``dataset_info`` of those configs, the front-matter keys its card sets, and the
README section between :data:`GENERATED_START` and :data:`GENERATED_END`) and keeps every other file,
README paragraph and metadata key, e.g. a LICENSE or a note uploaded by hand, or a config added by
someone else.

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
    >>> print(result)  # doctest: +SKIP
    pushed my-org/ladder-variants v1.0 (commit 3f5c2a1): https://huggingface.co/datasets/my-org/ladder-variants/tree/v1.0
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import datasets
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, DatasetCard, DatasetCardData, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.utils import yaml_dump

REPO_TYPE = "dataset"
DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024
_FRONT_MATTER = re.compile(r"^\s*---\s*\n(.*?)\n---\s*\n", re.S)
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")

# The README section a push writes and rewrites; everything outside it belongs to the repo's people.
GENERATED_START = "<!-- ladder_hf:generated:start -->"
GENERATED_END = "<!-- ladder_hf:generated:end -->"
# Right after GENERATED_START: the configs this section's push owns, so the next push knows which
# configs (entries and data files) it may drop. JSON, because config names may contain dots.
_OWNED_LINE = "<!-- ladder_hf:configs {names} (this section is rewritten by every push; edit outside it) -->"
_OWNED_RE = re.compile(r"<!-- ladder_hf:configs (\[[^\]]*\])")


class TagExistsError(ValueError):
    """The version tag is already on the Hub; nothing was changed."""


class PushError(RuntimeError):
    """A push did not complete; the message says what state the repo is in."""


@dataclass
class PushResult:
    """What :func:`push_versioned` published; ``str()`` is the one line a command prints.

    Example:
        >>> r = PushResult("org/data", "v1.0", "abc1234def", "", url="https://hf.co/datasets/org/data/tree/v1.0")
        >>> print(r)
        pushed org/data v1.0 (commit abc1234): https://hf.co/datasets/org/data/tree/v1.0
    """

    repo_id: str
    tag: str
    commit_oid: str
    commit_url: str
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    files: list[str] = field(default_factory=list)  # written by this version
    url: str = ""  # the repo's files at the tag, in a browser
    deleted: list[str] = field(default_factory=list)  # data files of our configs this version dropped

    def __str__(self) -> str:
        return f"pushed {self.repo_id} {self.tag} (commit {self.commit_oid[:7]}): {self.url or self.commit_url}"


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


def glob_matches(path: str, pattern: str) -> bool:
    """Whether repo ``path`` matches a ``data_files`` glob as ``datasets`` reads it (``*`` stays in one folder).

    Example:
        >>> glob_matches("all/train-00000-of-00001.parquet", "all/train-*")
        True
        >>> glob_matches("all/train-old/x.parquet", "all/train-*"), glob_matches("all/NOTES.md", "all/train-*")
        (False, False)
    """
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] in "*?":
            parts.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(parts), path) is not None


def data_file_patterns(entries: Sequence[Mapping]) -> list[str]:
    """The ``data_files`` globs of ``configs:`` entries (``path`` strings or lists, or bare strings).

    Example:
        >>> data_file_patterns([{"config_name": "all", "data_files": [{"split": "train", "path": "all/train-*"}]},
        ...                     {"config_name": "x", "data_files": "x/*.csv"}])
        ['all/train-*', 'x/*.csv']
    """
    out: set[str] = set()
    for entry in entries:
        files = entry.get("data_files")
        for item in files if isinstance(files, list) else [files]:
            if isinstance(item, Mapping):
                item = item.get("path")
            out.update(p for p in (item if isinstance(item, list) else [item]) if isinstance(p, str) and p)
    return sorted(out)


def files_to_delete(
    old_files: Sequence[str],
    new_files: Collection[str],
    owned: Sequence[str],
    keep: Sequence[str] = (".gitattributes",),
) -> list[str]:
    """Files of the previous version that this one does not write, that the push owns, and no ``keep`` glob protects.

    ``owned`` are the ``data_files`` globs of the configs the push replaces (:attr:`ReadmeMerge.data_files`):
    their old shards go, so a config that disappeared, or a shard count that shrank, leaves no stale
    rows. Every other file (a LICENSE, notes, someone else's config) is kept.

    Example:
        >>> old = [".gitattributes", "LICENSE", "README.md", "all/train-00000-of-00001.parquet",
        ...        "depth_2/train-00000-of-00001.parquet", "depth_2/NOTES.md"]
        >>> files_to_delete(old, ["README.md", "all/train-00000-of-00001.parquet"], ["all/train-*", "depth_2/train-*"])
        ['depth_2/train-00000-of-00001.parquet']
        >>> files_to_delete(old, ["README.md"], ["all/train-*", "depth_2/train-*"], keep=("depth_*",))
        ['all/train-00000-of-00001.parquet']
    """
    new = set(new_files)
    return [
        p
        for p in old_files
        if p not in new
        and any(glob_matches(p, pat) for pat in owned)
        and not any(fnmatch.fnmatch(p, pat) for pat in keep)
    ]


# --------------------------------------------------------------------------------------------
# The README merge: the repo's README keeps its people's text and metadata; ours is replaced.
# --------------------------------------------------------------------------------------------
@dataclass
class ReadmeMerge:
    """What :func:`merge_readme` made: the README to publish and what the push takes over."""

    text: str
    replaced_configs: list[str]  # configs whose YAML entries the push rewrites or drops
    data_files: list[str]  # globs of the data files the push owns: its configs' now and in the previous push


def split_front_matter(readme: str) -> tuple[dict, str]:
    """``(metadata, body)`` of README text; ``({}, readme)`` without front matter.

    Raises ``ValueError`` when the front matter is not a YAML mapping.

    Example:
        >>> split_front_matter("---\\nlicense: mit\\n---\\n# Data\\n")
        ({'license': 'mit'}, '# Data\\n')
    """
    match = REGEX_YAML_BLOCK.search(readme)
    if not match:
        return {}, readme
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as err:
        raise ValueError(f"the README front matter is not valid YAML ({err})") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("the README front matter is not a YAML mapping")
    return data, readme[match.end() :]


def _config_name(entry: Mapping) -> str:
    return str(entry.get("config_name", "default"))


def _entries(value) -> list[dict]:
    # dataset_info is a mapping for a single config and a list otherwise (datasets' own convention).
    if isinstance(value, Mapping):
        return [dict(value)]
    return [dict(e) for e in value or [] if isinstance(e, Mapping)]


def _generated_span(body: str) -> tuple[int, int] | None:
    """Where our section is: from the last start marker before the first end marker, through that end."""
    end = body.find(GENERATED_END)
    start = body.rfind(GENERATED_START, 0, end) if end >= 0 else -1
    return None if start < 0 else (start, end + len(GENERATED_END))


# Front matter keys a push measures from the rows it publishes: always this version's values. Every other
# key a card writes (licence, tags, ...) is a default that a value already in the README overrides.
MEASURED_KEYS = ("configs", "dataset_info", "size_categories")


def _blank_value(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def merge_card_data(existing: Mapping, ours: Mapping, replaced: Collection[str]) -> dict:
    """Front matter: ``existing`` merged with ``ours``; what the push measures replaces, the rest is kept.

    - ``configs``/``dataset_info`` (:data:`MEASURED_KEYS`): merged per config. Entries of configs in
      ``replaced`` (ours now or before) are dropped from ``existing`` and ours are put first; other
      people's entries are kept. A kept entry marked ``default: true`` stays the default (ours then is
      not marked). ``size_categories``, also measured from the rows pushed, is replaced.
    - every other key of ``ours`` (``license``, ``language``, ``pretty_name``, ``task_categories``,
      ``tags``, ...) is a default: written only where ``existing`` has no value, so a hand-edited
      licence or tag list survives the next push;
    - keys only ``existing`` has are kept.

    Example:
        >>> old = {"license": "mit", "my_notes": "keep", "configs": [
        ...     {"config_name": "all", "data_files": "all/*"}, {"config_name": "extra", "data_files": "x/*"}]}
        >>> new = {"license": "apache-2.0", "pretty_name": "Bee", "configs": [
        ...     {"config_name": "all", "default": True, "data_files": "a/*"}]}
        >>> merged = merge_card_data(old, new, {"all"})
        >>> merged["license"], merged["pretty_name"], merged["my_notes"], [c["config_name"] for c in merged["configs"]]
        ('mit', 'Bee', 'keep', ['all', 'extra'])
    """
    per_config = ("configs", "dataset_info")
    merged = dict(existing)
    for key in per_config:  # a config we owned and dropped loses its entries, even when ours has none
        if key in merged:
            merged[key] = [e for e in _entries(merged[key]) if _config_name(e) not in replaced]
    for key, value in ours.items():
        kept = merged.get(key) if key in per_config else None
        if key == "configs" and kept:
            if any(e.get("default") for e in kept):
                value = [{k: v for k, v in e.items() if k != "default"} for e in _entries(value)]
            value = [*_entries(value), *kept]
        elif key == "dataset_info" and kept:
            value = [{"config_name": _config_name(e), **e} for e in [*_entries(value), *kept]]
        elif key not in MEASURED_KEYS and not _blank_value(merged.get(key)):
            continue  # the repo's people set it (or an earlier push did): ours is only a default
        merged[key] = value  # in place: keys keep their order, so the same push twice writes the same bytes
    for key in per_config:
        if merged.get(key) == []:
            del merged[key]
    return merged


def merge_readme(existing: str | None, ours: str) -> ReadmeMerge:
    """The README to publish: ``ours`` (:func:`render_card`) merged into the repo's ``existing`` one.

    The rule (nothing the repo's people wrote is lost):

    - our body goes between :data:`GENERATED_START` and :data:`GENERATED_END`; text before and
      after the markers is kept as it is, and a README without markers (written by hand) is kept
      whole, with our section after it;
    - front matter: :func:`merge_card_data`, where the configs we replace are ours now plus those the
      previous section recorded as ours (so a config this version dropped loses its entry too); a
      licence, tags or other key the README already has keeps its value.

    Example:
        >>> mine = "---\\nlicense: mit\\nconfigs:\\n- config_name: all\\n  data_files: all/*\\n---\\n# Data v2\\n"
        >>> hand = "---\\nlicense: cc-by-4.0\\nthanks: Bee team\\n---\\n# Notes\\nHand-written.\\n"
        >>> first = merge_readme(hand, mine)
        >>> print(first.text)  # doctest: +NORMALIZE_WHITESPACE
        ---
        license: cc-by-4.0
        thanks: Bee team
        configs:
        - config_name: all
          data_files: all/*
        ---
        # Notes
        Hand-written.
        <BLANKLINE>
        <!-- ladder_hf:generated:start -->
        <!-- ladder_hf:configs ["all"] (this section is rewritten by every push; edit outside it) -->
        # Data v2
        <!-- ladder_hf:generated:end -->
        >>> merge_readme(first.text, mine).text == first.text  # the same push twice: the same README
        True
    """
    our_data, our_body = split_front_matter(ours)
    our_configs = [_config_name(e) for e in _entries(our_data.get("configs"))]
    old_data, prefix, suffix, owned_before = {}, "", "\n", []
    if existing is not None:
        old_data, old_body = split_front_matter(existing)
        span = _generated_span(old_body)
        if span is None:
            prefix = old_body.rstrip() + "\n\n" if old_body.strip() else ""
        else:
            prefix, suffix = old_body[: span[0]], old_body[span[1] :]
            owned = _OWNED_RE.search(old_body[span[0] : span[1]])
            owned_before = [str(n) for n in json.loads(owned.group(1))] if owned else []
    replaced = [*our_configs, *(n for n in owned_before if n not in our_configs)]
    # Old data files are ours only where the previous push recorded the config as ours: a same-named
    # config someone else made loses its entry to ours, but its files stay (unless our globs match them).
    old_entries = [e for e in _entries(old_data.get("configs")) if _config_name(e) in owned_before]
    data = merge_card_data(old_data, our_data, set(replaced))
    section = "\n".join(
        [GENERATED_START, _OWNED_LINE.format(names=json.dumps(our_configs)), our_body.strip("\n"), GENERATED_END]
    )
    front = yaml_dump(data, sort_keys=False).strip()
    return ReadmeMerge(
        text=f"---\n{front}\n---\n{prefix}{section}{suffix}",
        replaced_configs=sorted(replaced),
        data_files=data_file_patterns([*old_entries, *_entries(our_data.get("configs"))]),
    )


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


def _read_readme(api: HfApi, repo_id: str, revision: str, cache_dir: str) -> str:
    path = api.hf_hub_download(repo_id, "README.md", repo_type=REPO_TYPE, revision=revision, cache_dir=cache_dir)
    with open(path, encoding="utf-8") as f:
        return f.read()


def tree_url(endpoint: str, repo_id: str, revision: str) -> str:
    """The browser URL of a dataset repo's files at ``revision``.

    Example:
        >>> tree_url("https://huggingface.co", "org/data", "v1.0")
        'https://huggingface.co/datasets/org/data/tree/v1.0'
    """
    return f"{endpoint.rstrip('/')}/datasets/{repo_id}/tree/{quote(revision, safe='')}"


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

    Nothing in the repo is lost: the commit replaces only the files and README parts this push
    owns (see :func:`merge_readme` and :func:`files_to_delete`) and keeps every other file.

    Args:
        data: a ``Dataset`` (-> config ``default``, split ``train``), a ``DatasetDict`` or
            ``{config_name: Dataset | DatasetDict}``.
        repo_id: ``org/name``; created (``private`` honoured) when missing.
        tag: the version, e.g. ``"v1.0"``; refused with :class:`TagExistsError` if it exists.
        card: the dataset card: a ``DatasetCard`` (e.g. :func:`ladder_hf.variants.card.variants_card`)
            or README markdown, with or without YAML front matter, which is kept and extended;
            ``configs:`` and ``dataset_info`` are always written by us. ``None``: a generic card.
            Its body becomes the generated section of the repo's README; text outside that
            section and front-matter keys the card does not set are kept.
        default_config: the config ``load_dataset(repo_id)`` returns (first one by default).
        branch: the branch the version commit goes to (it must exist; ``main`` always does).
        keep: glob patterns of files the version commit must never delete, even data files of
            a config it owns (by default only ``.gitattributes``, which it never owns anyway).
        endpoint, token: forwarded to ``HfApi`` (default: ``HF_ENDPOINT`` / the saved token).

    Returns:
        :class:`PushResult` with the tagged commit's oid; ``str()`` of it is a one-line summary.

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
        upload = os.path.join(tmp, "upload")
        # 2. Everything is built locally before the network sees a byte of this version.
        paths = write_shards(configs, upload, max_shard_bytes)
        ours = render_card(card, card_metadata(configs, default_config), tag, repo_id)

        if not exists:
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
            tags, head, _ = _existing_tags_and_head(api, repo_id, branch)
            if tag in tags:  # created concurrently by someone else, with this tag already
                raise TagExistsError(f"{repo_id} already has tag {tag!r}; nothing was pushed")
        if head is None:
            raise PushError(
                f"{repo_id} has no branch {branch!r}; create it first (HfApi.create_branch), or push to main"
            )

        # The README and file list of exactly the head the commit will sit on (parent_commit below).
        old_files = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head)
        existing = _read_readme(api, repo_id, head, os.path.join(tmp, "cache")) if "README.md" in old_files else None
        try:
            readme = merge_readme(existing, ours)
        except ValueError as err:
            raise PushError(
                f"{repo_id}: README.md cannot be merged, {err}; fix it on the Hub, then push again"
            ) from err
        with open(os.path.join(upload, "README.md"), "w", encoding="utf-8") as f:
            f.write(readme.text)
        new_files = {*paths, "README.md"}
        deleted = files_to_delete(old_files, new_files, readme.data_files, keep)
        deletions = [CommitOperationDelete(path_in_repo=p) for p in deleted]
        additions = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=os.path.join(upload, p)) for p in sorted(new_files)
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
    return PushResult(
        repo_id, tag, info.oid, info.commit_url, rows, sorted(new_files), tree_url(api.endpoint, repo_id, tag), deleted
    )
