"""``LadderDataset``: a ``datasets`` builder that turns variant trees into rows.

A variants folder is what :func:`ladder_hf.variants.generate_tree` writes: ``nodes.jsonl``, one
node per line (roots at depth 0, variants below them). The builder declares the columns (so a
tree with a missing optional field still loads, as ``None``), keeps every field it does not know
in a JSON ``extra`` column (nothing is lost) and offers configs for the usual slices:

=============  ===========================================================
config         rows
=============  ===========================================================
``all``        every kept node (default)
``roots``      the original problems (depth 0)
``variants``   every kept variant (depth >= 1): the LADDER training set
``depth_N``    the variants at depth N (N = 1..5)
``rejected``   candidates quality control rejected (``rejected.jsonl``), an audit trail,
               and every node of a contaminated root's tree
=============  ===========================================================

A root equivalent to a protected (test) problem takes its whole tree out of every training config
(see :func:`contaminated_roots`); those rows appear under ``rejected`` with ``qc_status``
``contaminated`` (the root) or ``contaminated_tree`` (its descendants) and ``contaminated_with``.

Nodes marked rejected (``kept`` false) in ``nodes.jsonl`` are left out unless the builder gets
``kept_only=False``.

Example:
    >>> from ladder_hf.dataset import LadderDataset, load_ladder_dataset
    >>> builder = LadderDataset(data_dir="variants/mit-train", config_name="variants")  # doctest: +SKIP
    >>> builder.download_and_prepare()  # doctest: +SKIP
    >>> rows = builder.as_dataset(split="train")  # doctest: +SKIP
    >>> rows = load_ladder_dataset("variants/mit-train", "depth_1")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import datasets

from ladder_hf import LADDER_CITATION
from ladder_hf.store import read_jsonl

NODES_FILE = "nodes.jsonl"
REJECTED_FILE = "rejected.jsonl"
MAX_DEPTH_CONFIG = 5

_CITATION = LADDER_CITATION

_DESCRIPTION = (
    "Variant trees of integration problems in the style of LADDER (arXiv 2503.00735): each root "
    "problem has easier or equivalent variants, written by a model or by sympy mutations, recursively, "
    "with quality-control annotations (numeric sanity, numerical dedup, difficulty, whether sympy "
    "integrates it, contamination guard against a protected test set)."
)

# Declared columns. Every one is optional in nodes.jsonl: a missing field loads as None.
FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "root_id": datasets.Value("string"),
        "parent_id": datasets.Value("string"),
        "depth": datasets.Value("int32"),
        "integrand": datasets.Value("string"),
        "lower": datasets.Value("string"),
        "upper": datasets.Value("string"),
        "kind": datasets.Value("string"),
        "transformations": datasets.List(datasets.Value("string")),
        "persona": datasets.Value("string"),
        "temperature": datasets.Value("float32"),
        "generator": datasets.Value("string"),
        "difficulty": datasets.Value("float32"),
        "difficulty_delta": datasets.Value("float32"),
        "sympy_solvable": datasets.Value("bool"),
        "sympy_antiderivative": datasets.Value("string"),
        "source_problem": datasets.Value("string"),
        "raw": datasets.Value("string"),
        # Quality control.
        "kept": datasets.Value("bool"),
        "qc_status": datasets.Value("string"),
        "qc_reason": datasets.Value("string"),
        "numeric_sane": datasets.Value("bool"),
        "duplicate_of": datasets.Value("string"),
        "contaminated_with": datasets.Value("string"),
        # The guard's rule that matched (``affine change of variable x -> x + 1``, ``constant multiple (4)``, ...).
        "contamination_rule": datasets.Value("string"),
        # Everything else the generator wrote, as a JSON object.
        "extra": datasets.Value("string"),
    }
)

# TRL's conversational format: the ``prompt`` column of published configs (:func:`with_prompt`).
PROMPT_FEATURE = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
# The prompt published rows ask with: the package's default, the one ``ladder-hf train`` uses unless told.
HUB_PROMPT = "default"

# Bookkeeping generate_tree keeps for itself (the numeric fingerprint used for dedup): not published.
_INTERNAL_FIELDS = frozenset({"qc_fingerprint"})

_STRING_COLUMNS = [name for name, f in FEATURES.items() if isinstance(f, datasets.Value) and f.dtype == "string"]


@dataclass
class LadderConfig(datasets.BuilderConfig):
    """A slice of the tree: depths ``min_depth..max_depth`` (``None`` = unbounded)."""

    min_depth: int | None = None
    max_depth: int | None = None
    kept_only: bool = True
    source: str = NODES_FILE


def _configs() -> list[LadderConfig]:
    configs = [
        LadderConfig(name="all", description="Every kept node, roots included."),
        LadderConfig(name="roots", min_depth=0, max_depth=0, description="The original problems (depth 0)."),
        LadderConfig(name="variants", min_depth=1, description="Every kept variant (depth >= 1)."),
    ]
    configs += [
        LadderConfig(name=f"depth_{d}", min_depth=d, max_depth=d, description=f"Variants at depth {d}.")
        for d in range(1, MAX_DEPTH_CONFIG + 1)
    ]
    configs.append(
        LadderConfig(
            name="rejected",
            kept_only=False,
            source=REJECTED_FILE,
            description="Candidates quality control rejected, with qc_status/qc_reason (an audit trail).",
        )
    )
    return configs


def _is_kept(node: dict) -> bool:
    # generate_tree may record rejected candidates next to kept ones; those carry kept=False or
    # a qc_status other than "kept"/"ok".
    if "kept" in node and node["kept"] is not None:
        return bool(node["kept"])
    status = node.get("qc_status")
    return status in (None, "", "kept", "ok", "root")


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def node_to_row(node: dict) -> dict:
    """One nodes.jsonl record -> one row matching :data:`FEATURES` (pure; unknown keys go to ``extra``).

    Example:
        >>> row = node_to_row({"id": "a", "depth": 0, "integrand": "x**2", "novel": 1})
        >>> row["depth"], row["parent_id"], row["extra"]
        (0, None, '{"novel": 1}')
    """
    row: dict = {}
    for name in FEATURES:
        if name == "extra":
            continue
        value = node.get(name)
        if name == "transformations":
            if value is None:
                value = []
            elif isinstance(value, str):
                value = [value]
            value = [_as_text(t) for t in value]
        elif name == "depth":
            value = None if value is None else int(value)
        elif name in ("temperature", "difficulty", "difficulty_delta"):
            value = None if value is None or value == "" else float(value)
        elif name in ("sympy_solvable", "kept", "numeric_sane"):
            value = None if value is None else bool(value)
        elif name in _STRING_COLUMNS:
            value = _as_text(value)
        row[name] = value
    if row["kept"] is None:
        row["kept"] = _is_kept(node)
    # A root is its own tree; fill root_id so that grouping by tree never meets None.
    if row["root_id"] is None and row["depth"] == 0:
        row["root_id"] = row["id"]
    for key in ("lower", "upper"):
        if row[key] is None:
            row[key] = ""
    extra = {k: v for k, v in node.items() if k not in FEATURES and k not in _INTERNAL_FIELDS}
    row["extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str) if extra else None
    return row


def in_config(row: dict, config: LadderConfig) -> bool:
    """Whether a row (from :func:`node_to_row`) belongs to ``config``."""
    if config.kept_only and not row["kept"]:
        return False
    depth = row["depth"] if row["depth"] is not None else 0
    if config.min_depth is not None and depth < config.min_depth:
        return False
    return not (config.max_depth is not None and depth > config.max_depth)


def contaminated_roots(nodes: list[dict]) -> dict[str, tuple[str, str, str]]:
    """Roots whose whole tree is out of training: ``{root id: (protected id, reason, rule)}``.

    A root is contaminated when the guard marked it so (``kept`` false, ``qc_status`` ``contaminated``)
    or when it carries ``contaminated_with`` naming a protected problem other than itself (folders
    written before whole trees were excluded). A root that *is* the protected problem (test-time
    training: ``contaminated_with`` is its own id) keeps its tree.

    Example:
        >>> contaminated_roots([{"id": "a", "depth": 0, "contaminated_with": "t7", "qc_reason": "t7: x -> x + 1"},
        ...                     {"id": "t7", "depth": 0, "contaminated_with": "t7: identical"}])
        {'a': ('t7', 't7: x -> x + 1', 'x -> x + 1')}
    """
    out: dict[str, tuple[str, str, str]] = {}
    for node in nodes:
        if node.get("depth") not in (0, None) or node.get("parent_id") or node.get("id") is None:
            continue
        rid = str(node["id"])
        matched = str(node.get("contaminated_with") or "").split(":")[0].strip()
        marked = node.get("qc_status") == "contaminated"
        if marked or (matched and matched != rid):
            reason = str(node.get("qc_reason") or node.get("contaminated_with") or "contaminated")
            # folders written before the rule had its own field: it is the part of the reason after the id
            rule = node.get("contamination_rule") or reason.split(": ", 1)[-1]
            out[rid] = (matched, reason, str(rule))
    return out


def read_nodes(folder_or_file: str) -> list[dict]:
    """The node records of a variants folder (or a nodes.jsonl path), in file order.

    A run killed mid-write can leave a cut last line; it is not a row (the rules of
    :mod:`ladder_hf.store`). A node id seen twice keeps its last record.
    """
    path = folder_or_file
    if os.path.isdir(path):
        path = os.path.join(path, NODES_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {NODES_FILE} at {folder_or_file!r}: is this a variants folder?")
    nodes: dict[str, dict] = {}
    anonymous: list[dict] = []
    for node in read_jsonl(path):
        if not isinstance(node, dict):
            continue
        if node.get("id") is None:
            anonymous.append(node)
        else:
            nodes.pop(str(node["id"]), None)
            nodes[str(node["id"])] = node
    return list(nodes.values()) + anonymous


def _file_digest(*paths: str) -> str:
    h = hashlib.sha256()
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


class LadderDataset(datasets.GeneratorBasedBuilder):
    """Rows from a variants folder's ``nodes.jsonl`` (see the module docstring for the configs).

    The cache key includes a digest of ``nodes.jsonl``, so a tree that grew (a resumed run) is
    never served from a stale cache.

    Example:
        >>> builder = LadderDataset(data_dir="variants/demo", config_name="roots")  # doctest: +SKIP
        >>> builder.download_and_prepare()  # doctest: +SKIP
        >>> builder.as_dataset(split="train")[0]["depth"]  # doctest: +SKIP
        0
    """

    BUILDER_CONFIG_CLASS = LadderConfig
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "all"
    # 1.1: contaminated trees leave the training configs; 1.2: the matched rule has its own column
    VERSION = datasets.Version("1.2.0")

    def __init__(self, *args, data_dir: str | None = None, hash: str | None = None, **kwargs):
        if data_dir is not None:
            data_dir = os.path.abspath(os.path.expanduser(data_dir))
            nodes_path = os.path.join(data_dir, NODES_FILE)
            if hash is None and os.path.exists(nodes_path):
                hash = _file_digest(nodes_path, os.path.join(data_dir, REJECTED_FILE))
        kwargs.setdefault("dataset_name", "ladder_variants")
        super().__init__(*args, data_dir=data_dir, hash=hash, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=FEATURES,
            citation=_CITATION,
            homepage="https://arxiv.org/abs/2503.00735",
            license="apache-2.0",
        )

    def _split_generators(self, dl_manager):
        if not self.config.data_dir:
            raise ValueError("LadderDataset needs data_dir=<variants folder holding nodes.jsonl>")
        if not os.path.exists(os.path.join(self.config.data_dir, NODES_FILE)):
            raise FileNotFoundError(f"no {NODES_FILE} in {self.config.data_dir!r}: is this a variants folder?")
        path = os.path.join(self.config.data_dir, self.config.source)
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"path": path})]

    def _generate_examples(self, path: str):
        # Trees, not nodes: every row of a contaminated root's tree leaves the training configs and is
        # listed under `rejected` with the protected id it matched.
        nodes = read_nodes(os.path.join(self.config.data_dir, NODES_FILE))
        excluded = contaminated_roots(nodes)
        if self.config.source == NODES_FILE:
            for node in nodes:
                row = node_to_row(node)
                if row["id"] is None or row["root_id"] in excluded or not in_config(row, self.config):
                    continue
                yield row["id"], row
            return
        if os.path.exists(path):  # a tree with nothing rejected has no rejected.jsonl
            for i, node in enumerate(read_nodes(path)):
                yield f"{self.config.source}:{i}", node_to_row(node)
        for node in nodes:
            row = node_to_row(node)
            if row["id"] is None or row["root_id"] not in excluded:
                continue
            protected, reason, rule = excluded[row["root_id"]]
            is_root = row["id"] == row["root_id"]
            row.update(kept=False, contaminated_with=protected or row["contaminated_with"], contamination_rule=rule)
            row["qc_status"] = "contaminated" if is_root else "contaminated_tree"
            row["qc_reason"] = reason if is_root else f"its root {row['root_id']} is contaminated ({reason})"
            yield row["id"], row


def load_ladder_dataset(folder: str, config: str = "all", cache_dir: str | None = None, **builder_kwargs):
    """Build and return the ``train`` split of ``config`` for a variants folder.

    Example:
        >>> ds = load_ladder_dataset("variants/mit-train", "variants")  # doctest: +SKIP
        >>> ds.column_names[:4]  # doctest: +SKIP
        ['id', 'root_id', 'parent_id', 'depth']
    """
    builder = LadderDataset(data_dir=folder, config_name=config, cache_dir=cache_dir, **builder_kwargs)
    builder.download_and_prepare()
    split = builder.info.splits.get("train") if builder.info.splits else None
    if split is None or split.num_examples == 0:
        # datasets refuses to read an empty split back ("corresponds to no data"); an empty
        # slice (say depth_3 of a depth-2 tree) is still a valid answer.
        return datasets.Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES, split="train")
    return builder.as_dataset(split="train")


def with_prompt(dataset: datasets.Dataset, prompt: str = HUB_PROMPT) -> datasets.Dataset:
    """``dataset`` plus TRL's conversational ``prompt`` column: each row's integral asked with ``prompt`` by
    :func:`ladder_hf.problems.build_messages`, the package's one prompt builder. The other columns are left
    as they are, so ``trl grpo --dataset_name`` trains on the rows as published and the reward
    (:func:`ladder_hf.rewards.integration_reward`) reads ``integrand``/``lower``/``upper`` from them.

    Example:
        >>> rows = datasets.Dataset.from_list([node_to_row({"id": "a", "depth": 0, "integrand": "x**2"})])
        >>> [turn["role"] for turn in with_prompt(rows)[0]["prompt"]]
        ['system', 'user']
        >>> with_prompt(rows)[0]["prompt"][-1]["content"]
        'Find the indefinite integral: ∫ x**2 dx'
    """
    from ladder_hf.problems import build_messages, resolve_prompt

    spec = resolve_prompt(prompt)

    def _row(row: dict) -> dict:
        problem = {"integrand": row["integrand"], "lower": row["lower"] or "", "upper": row["upper"] or ""}
        return {"prompt": build_messages(problem, spec)}

    if not dataset.num_rows:  # map() adds no column to an empty dataset; the config still declares it
        return dataset.add_column("prompt", [], feature=PROMPT_FEATURE)
    features = dataset.features.copy()
    features["prompt"] = PROMPT_FEATURE
    return dataset.map(_row, features=features, desc="Building prompts")


def config_names() -> list[str]:
    """The configs :class:`LadderDataset` offers, default first."""
    return [c.name for c in LadderDataset.BUILDER_CONFIGS]
