"""A Hub-compatible HTTP server on 127.0.0.1 for tests.

It speaks only the part of the Hugging Face Hub HTTP API that our code and the clients it drives
call (found by logging every request of the test suite): ``create_repo``, ``list_repo_refs``,
``create_commit`` (preupload, LFS batch + PUT, NDJSON commit with ``parentCommit``),
``create_tag``, repo info by revision, tree listing and ``resolve`` downloads with
``X-Repo-Commit``/``ETag``, for dataset and model repos. That is what ``ladder_hf.hub``,
``ladder-hf variants push``, ``Dataset.push_to_hub``, ``Trainer.push_to_hub``, ``load_dataset``
and ``hf_hub_download`` use. State lives in memory: repos, commits (full file maps, so every old
revision stays readable), branches, tags and LFS objects. Errors carry the Hub's ``X-Error-Code``
(``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) so the clients raise their usual
exceptions.

Point the clients at it with ``HF_ENDPOINT=<url>``, ``HF_TOKEN=<anything>`` and
``HF_HUB_DISABLE_XET=1`` (set before ``huggingface_hub`` is imported, e.g. in a subprocess).

Fault injection for tests: ``server.faults["commit"] = 500`` (or, from a client process,
``POST /_test/faults {"commit": 500}``) makes every commit request fail with that status until
the key is removed (keys: ``commit``, ``lfs_upload``, ``lfs_batch``, ``preupload``, ``tag``).
``GET /_test/state`` returns the server's own view of tags, branches and commits.

Example:
    >>> server = HubServer().start()  # doctest: +SKIP
    >>> server.url  # doctest: +SKIP
    'http://127.0.0.1:40123'
    >>> server.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset"}
URL_PREFIX = {"model": "", "dataset": "datasets/"}
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"
# Files the preupload endpoint routes to LFS, like the Hub's default .gitattributes.
LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".gguf")
LFS_MIN_SIZE = 10 * 1024 * 1024
_FRONT_MATTER = re.compile(r"^---\s*\n(.*?)\n---\s*\n", re.S)


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob (what the Hub reports as ``oid`` for regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FileEntry:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return LFS_POINTER.format(oid=self.sha256, size=len(self.content)).encode()

    @property
    def oid(self) -> str:
        # For LFS files git stores (and the Hub reports) the pointer blob's id.
        return git_blob_oid(self.pointer if self.lfs else self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_blob_oid(self.content)


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    date: str
    files: dict[str, FileEntry]


@dataclass
class Repo:
    repo_id: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubState:
    """Repos, commits and LFS objects; every method is called under :attr:`lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self._counter = itertools.count()

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        if (repo_type, repo_id) in self.repos:
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
        repo = Repo(repo_id=repo_id, private=private, created=_now())
        self.repos[(repo_type, repo_id)] = repo
        # Like the Hub: a first commit holding .gitattributes.
        first = self._new_commit(None, "initial commit", {".gitattributes": FileEntry(GITATTRIBUTES, lfs=False)})
        repo.commits[first.oid] = first
        repo.branches["main"] = first.oid
        return repo

    def _new_commit(self, parent: str | None, title: str, files: dict[str, FileEntry]) -> Commit:
        seed = json.dumps([parent, title, sorted((p, f.oid) for p, f in files.items()), next(self._counter)])
        return Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, _now(), files)

    def resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, tag or commit id (clients percent-encode revisions) -> its commit."""
        rev = unquote(revision)
        oid = repo.branches.get(rev) or repo.tags.get(rev) or (rev if rev in repo.commits else None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[oid]

    def history_length(self, repo: Repo, branch: str = "main") -> int:
        n, oid = 0, repo.branches[branch]
        while oid is not None:
            n, oid = n + 1, repo.commits[oid].parent
        return n

    def commit(self, repo: Repo, branch: str, lines: list[dict]) -> Commit:
        """Apply an NDJSON commit atomically: header, then ``file`` / ``lfsFile`` / ``deletedFile`` lines."""
        branch = unquote(branch)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to an existing branch)", "RevisionNotFound")
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        head = repo.commits[repo.branches[branch]]
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HubError(412, f"A commit has happened since {parent}: the head of {branch} is {head.oid}")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise HubError(400, f"Invalid path in commit: {path!r}")
            if key == "file":
                files[path] = FileEntry(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.lfs_objects.get(value.get("oid"))
                if content is None:
                    raise HubError(422, f"LFS object {value.get('oid')} for {path} was never uploaded")
                files[path] = FileEntry(content, lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = self._new_commit(head.oid, header.get("summary") or "update", files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def snapshot(self) -> dict:
        """Tags, branches and commit count (on main) of every repo, and the LFS object count."""
        repos = {
            f"{repo_type}:{repo_id}": {
                "tags": dict(repo.tags),
                "branches": dict(repo.branches),
                "commits": self.history_length(repo),
            }
            for (repo_type, repo_id), repo in self.repos.items()
        }
        return {"repos": repos, "lfs_objects": len(self.lfs_objects)}

    @staticmethod
    def tree(commit: Commit, path: str, recursive: bool) -> list[dict]:
        """The entries under folder ``path`` (files and folders; the whole subtree when ``recursive``)."""
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        entries: dict[str, dict] = {}
        for p in sorted(commit.files):
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix) :].split("/")
            for i in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder = prefix + "/".join(parts[:i])
                entries.setdefault(folder, {"type": "directory", "oid": git_blob_oid(folder.encode()), "size": 0})
            if recursive or len(parts) == 1:
                f = commit.files[p]
                entries[p] = {"type": "file", "oid": f.oid, "size": len(f.content)}
                if f.lfs:
                    entries[p]["lfs"] = {"oid": f.sha256, "size": len(f.content), "pointerSize": len(f.pointer)}
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        return [{**entry, "path": p} for p, entry in sorted(entries.items())]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str | None = None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers, "application/json")

    def _dispatch(self):
        try:
            # Read the body first: answering before reading it would break the keep-alive stream.
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            with self.server.state.lock:
                self._route(split.path.strip("/").split("/"), query, body)
        except HubError as err:
            headers = {**err.headers, "X-Error-Message": err.message.encode("ascii", "replace").decode()}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._json(err.status, {"error": err.message}, headers)
        except Exception as exc:  # a bug in the server: report it as the Hub would, and log it
            import traceback

            traceback.print_exc()
            self._json(500, {"error": f"test hub server error: {exc!r}"})

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _fault(self, name: str):
        status = self.server.faults.get(name)
        if status:
            raise HubError(int(status), f"injected fault on {name}")

    # -- routing -------------------------------------------------------------------------------
    def _route(self, parts: list[str], query: dict, body: bytes):
        """``parts`` is the path split on ``/``, still percent-encoded (revisions may contain %2F)."""
        state, method = self.server.state, self.command
        if parts == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            match = _FRONT_MATTER.match(json.loads(body or b"{}").get("content", ""))
            try:
                if match and not isinstance(yaml.safe_load(match.group(1)) or {}, dict):
                    raise HubError(400, "README metadata must be a YAML mapping")
            except yaml.YAMLError as exc:
                raise HubError(400, f"Invalid YAML in README: {exc}") from exc
            return self._json(200, {"errors": [], "warnings": []})
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            repo_type, repo_id = REPO_TYPES[parts[1]], f"{unquote(parts[2])}/{unquote(parts[3])}"
            return self._api_repo(repo_type, state.repo(repo_type, repo_id), parts[4:], query, body)
        if parts[0] == "_test":
            return self._control(parts[1:], body)
        if parts[0] == "_lfs" and len(parts) == 2 and method == "PUT":
            self._fault("lfs_upload")
            if hashlib.sha256(body).hexdigest() != parts[1]:
                raise HubError(400, f"LFS upload content does not match its oid {parts[1]}")
            state.lfs_objects[parts[1]] = body
            return self._send(200)
        # git/LFS and file routes: [datasets/]ns/name(.git)/...
        repo_type = "model"
        if parts[0] == "datasets":
            repo_type, parts = "dataset", parts[1:]
        if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(state.repo(repo_type, f"{unquote(parts[0])}/{unquote(parts[1][:-4])}"), body)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            repo = state.repo(repo_type, f"{unquote(parts[0])}/{unquote(parts[1])}")
            return self._resolve(state.resolve(repo, parts[3]), unquote("/".join(parts[4:])))
        raise HubError(404, f"test hub server: no route for {method} {self.path}")

    def _control(self, rest: list[str], body: bytes):
        """Test-only endpoints, so a client process can drive faults and read the true state.

        ``POST /_test/faults`` with ``{"commit": 500}`` sets a fault (``null`` clears it);
        ``GET /_test/state`` returns tags, branches and commit counts per repo.
        """
        if rest == ["faults"] and self.command == "POST":
            for name, status in json.loads(body or b"{}").items():
                if status:
                    self.server.faults[name] = int(status)
                else:
                    self.server.faults.pop(name, None)
            return self._json(200, dict(self.server.faults))
        if rest == ["state"] and self.command == "GET":
            return self._json(200, self.server.state.snapshot())
        raise HubError(404, f"no test control endpoint /_test/{'/'.join(rest)}")

    def _create_repo(self, payload: dict):
        name, repo_type = payload.get("name"), payload.get("type") or "model"
        if not name or "/" in name or repo_type not in URL_PREFIX:
            raise HubError(400, f"Invalid repo {repo_type} {name!r}")
        repo_id = f"{payload.get('organization') or 'tester'}/{name}"
        self.server.state.create_repo(repo_type, repo_id, bool(payload.get("private")))
        return self._json(200, {"url": f"{self.server.url}/{URL_PREFIX[repo_type]}{repo_id}", "name": repo_id})

    def _api_repo(self, repo_type: str, repo: Repo, rest: list[str], query: dict, body: bytes):
        state, method = self.server.state, self.command
        action = rest[0] if rest else ""
        revision = rest[1] if len(rest) > 1 else "main"
        if action in ("", "revision") and method == "GET":
            return self._json(200, self._info(repo, state.resolve(repo, revision)))
        if action == "refs" and method == "GET":

            def refs(items: dict, kind: str) -> list[dict]:
                return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(items.items())]

            branches, tags = refs(repo.branches, "heads"), refs(repo.tags, "tags")
            return self._json(200, {"branches": branches, "tags": tags, "converts": []})
        if action == "tree" and method == "GET":
            recursive = query.get("recursive") in ("1", "true", "True")
            return self._json(200, state.tree(state.resolve(repo, revision), unquote("/".join(rest[2:])), recursive))
        if action == "preupload" and method == "POST":
            self._fault("preupload")
            commit = state.resolve(repo, revision)
            return self._json(200, {"files": [self._preupload(commit, f) for f in json.loads(body)["files"]]})
        if action == "commit" and method == "POST":
            self._fault("commit")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            commit = state.commit(repo, revision, lines)
            url = f"{self.server.url}/{URL_PREFIX[repo_type]}{repo.repo_id}/commit/{commit.oid}"
            return self._json(200, {"commitUrl": url, "commitOid": commit.oid, "pullRequestUrl": None})
        if action == "tag" and method == "POST":
            self._fault("tag")
            tag = json.loads(body or b"{}").get("tag")
            if not tag:
                raise HubError(400, "Missing tag name")
            if tag in repo.tags:  # an existing tag is never moved: 409 like the Hub
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = state.resolve(repo, revision).oid
            return self._json(200, {})
        raise HubError(404, f"test hub server: no route for {method} {self.path}")

    def _info(self, repo: Repo, commit: Commit) -> dict:
        readme = commit.files.get("README.md")
        match = _FRONT_MATTER.match(readme.content.decode("utf-8", "replace")) if readme else None
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created,
            "private": repo.private,
            "cardData": yaml.safe_load(match.group(1)) if match else None,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        }

    def _preupload(self, commit: Commit, spec: dict) -> dict:
        path, size = spec["path"], int(spec.get("size") or 0)
        lfs = path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in base64.b64decode(spec.get("sample") or "")
        existing = commit.files.get(path)
        # The remote oid lets the client skip unchanged files (no empty commits): sha256 for LFS, git sha1 otherwise.
        oid = None if existing is None else existing.etag
        return {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}

    def _lfs_batch(self, repo: Repo, body: bytes):
        self._fault("lfs_batch")
        objects = []
        for obj in json.loads(body).get("objects", []):
            item = {"oid": obj["oid"], "size": int(obj["size"])}
            if obj["oid"] not in self.server.state.lfs_objects:
                item["actions"] = {"upload": {"href": f"{self.server.url}/_lfs/{obj['oid']}", "header": {}}}
            objects.append(item)
        return self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _resolve(self, commit: Commit, path: str):
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.etag}"'}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = len(entry.content)
        self._send(200, entry.content, headers, "application/octet-stream")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, state: HubState, verbose: bool):
        super().__init__(addr, _Handler)
        self.state = state
        self.verbose = verbose
        self.faults: dict[str, int] = {}
        self.url = f"http://{addr[0]}:{self.server_address[1]}"


class HubServer:
    """Run the test Hub on ``127.0.0.1`` in a background thread.

    Attributes after :meth:`start`: ``url``, ``state`` (:class:`HubState`, inspect repos/tags) and
    ``faults`` (endpoint name -> HTTP status to fail with).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        self.state = HubState()
        self._server = _Server((host, port), self.state, verbose)
        self.url = self._server.url
        self.faults = self._server.faults
        self._thread: threading.Thread | None = None

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def tags(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        """The server's own view of a repo's tags (not the client's), for assertions."""
        with self.state.lock:
            return dict(self.state.repo(repo_type, repo_id).tags)


if __name__ == "__main__":  # python tests/hub_server.py [port]: a server for manual experiments
    import sys

    server = HubServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0, verbose=True).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
