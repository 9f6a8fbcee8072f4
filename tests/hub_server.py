"""A Hub-compatible HTTP server on 127.0.0.1 for tests.

It speaks the subset of the Hugging Face Hub HTTP API that the real ``huggingface_hub`` and
``datasets`` clients call for ``create_repo``, ``create_commit`` / ``upload_file`` /
``Dataset.push_to_hub`` (preupload, LFS batch + PUT, NDJSON commit), branches, tags and refs,
tree listing, ``paths-info``, commit history, repo info by revision and ``resolve`` downloads
(with ``X-Repo-Commit``/``ETag``/``Range``), so ``load_dataset``, ``hf_hub_download``,
``snapshot_download`` and ``HfFileSystem`` work against it. State lives in memory: repos, commits
(full file maps, so every old revision stays readable), branches, tags and LFS objects.

Point the clients at it with ``HF_ENDPOINT=<url>``, ``HF_TOKEN=<anything>`` and
``HF_HUB_DISABLE_XET=1`` (set before ``huggingface_hub`` is imported, e.g. in a subprocess).

Fault injection for tests: ``server.faults["commit"] = 500`` (or, from a client process,
``POST /_test/faults {"commit": 500}``) makes every commit request fail with that status until
the key is removed (keys: ``commit``, ``lfs_upload``, ``lfs_batch``, ``preupload``, ``tag``,
``branch``). ``GET /_test/state`` returns the server's own view of tags, branches and commits.

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

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"
# Files the preupload endpoint routes to LFS, like the Hub's default .gitattributes.
LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".gguf", ".zip", ".gz", ".npy", ".h5")
LFS_MIN_SIZE = 10 * 1024 * 1024


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
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def pointer(self) -> bytes:
        return LFS_POINTER.format(oid=self.sha256, size=self.size).encode()

    @property
    def oid(self) -> str:
        # For LFS files git stores (and the Hub reports) the pointer blob's id.
        return git_blob_oid(self.pointer() if self.lfs else self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_blob_oid(self.content)


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, FileEntry]


@dataclass
class Repo:
    repo_id: str
    repo_type: str
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

    # -- repos and revisions -------------------------------------------------------------------
    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        if (repo_type, repo_id) in self.repos:
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
        repo = Repo(repo_id=repo_id, repo_type=repo_type, private=private, created=_now())
        self.repos[(repo_type, repo_id)] = repo
        # Like the Hub: a first commit holding .gitattributes.
        first = self._new_commit(None, "initial commit", "", {".gitattributes": FileEntry(GITATTRIBUTES, lfs=False)})
        repo.commits[first.oid] = first
        repo.branches["main"] = first.oid
        return repo

    def _new_commit(self, parent: str | None, title: str, message: str, files: dict[str, FileEntry]) -> Commit:
        seed = json.dumps([parent, title, message, sorted((p, f.oid) for p, f in files.items()), next(self._counter)])
        return Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, _now(), files)

    def resolve(self, repo: Repo, revision: str) -> Commit:
        rev = unquote(revision)
        for prefix, refs in (("refs/heads/", repo.branches), ("refs/tags/", repo.tags)):
            if rev.startswith(prefix) and rev[len(prefix) :] in refs:
                return repo.commits[refs[rev[len(prefix) :]]]
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.tags:
            return repo.commits[repo.tags[rev]]
        if rev in repo.commits:
            return repo.commits[rev]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def history(self, repo: Repo, commit: Commit) -> list[Commit]:
        out = [commit]
        while out[-1].parent is not None:
            out.append(repo.commits[out[-1].parent])
        return out

    def last_commit_for(self, repo: Repo, commit: Commit, path: str) -> Commit:
        """The most recent commit (from ``commit`` back) that changed ``path`` (a file or folder)."""

        def snapshot(c: Commit) -> list:
            return sorted((p, f.oid) for p, f in c.files.items() if p == path or p.startswith(path.rstrip("/") + "/"))

        history = self.history(repo, commit)
        current = snapshot(commit)
        last = commit
        for older in history[1:]:
            if snapshot(older) != current:
                break
            last = older
        return last

    # -- commits -------------------------------------------------------------------------------
    def commit(self, repo: Repo, branch: str, lines: list[dict]) -> Commit:
        branch = unquote(branch)
        if branch.startswith("refs/heads/"):
            branch = branch[len("refs/heads/") :]
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
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[path] = FileEntry(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                oid = value.get("oid")
                if oid not in self.lfs_objects:
                    raise HubError(422, f"LFS object {oid} for {path} was never uploaded")
                if value.get("size") is not None and int(value["size"]) != len(self.lfs_objects[oid]):
                    raise HubError(422, f"LFS object {oid} has size {len(self.lfs_objects[oid])}, not {value['size']}")
                files[path] = FileEntry(self.lfs_objects[oid], lfs=True)
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = self._new_commit(head.oid, header.get("summary") or "update", header.get("description") or "", files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def snapshot(self) -> dict:
        """Tags, branches and commit count (on main) of every repo, and the LFS object count."""
        repos = {}
        for (repo_type, repo_id), repo in self.repos.items():
            main = repo.commits[repo.branches["main"]] if "main" in repo.branches else None
            repos[f"{repo_type}:{repo_id}"] = {
                "tags": dict(repo.tags),
                "branches": dict(repo.branches),
                "commits": len(self.history(repo, main)) if main else 0,
            }
        return {"repos": repos, "lfs_objects": len(self.lfs_objects)}

    # -- tree ----------------------------------------------------------------------------------
    def entries(self, repo: Repo, commit: Commit, path: str, recursive: bool, expand: bool) -> list[dict]:
        path = path.strip("/")
        prefix = path + "/" if path else ""
        if path and path in commit.files:
            return [self.entry(repo, commit, path, expand)]
        children: dict[str, str] = {}
        for p in sorted(commit.files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :].split("/")
            for i in range(1, len(rest)):
                children.setdefault(prefix + "/".join(rest[:i]), "directory")
            children[p] = "file"
        if path and not children:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        if not recursive:
            children = {p: t for p, t in children.items() if "/" not in p[len(prefix) :]}
        return [self.entry(repo, commit, p, expand) for p in sorted(children)]

    def entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        if path in commit.files:
            f = commit.files[path]
            out: dict = {"type": "file", "oid": f.oid, "size": f.size, "path": path}
            if f.lfs:
                out["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer())}
        else:
            members = sorted((p, f.oid) for p, f in commit.files.items() if p.startswith(path + "/"))
            if not members:
                return {}
            out = {"type": "directory", "oid": hashlib.sha1(json.dumps(members).encode()).hexdigest(), "size": 0}
            out["path"] = path
        if expand:
            last = self.last_commit_for(repo, commit, path)
            out["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str | None = None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers, "application/json")

    def _error(self, err: HubError):
        headers = dict(err.headers)
        if err.code:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message.encode("ascii", "replace").decode()
        self._json(err.status, {"error": err.message}, headers)

    def _dispatch(self):
        state = self.server.state
        try:
            # Read the body first: answering before reading it would break the keep-alive stream.
            body = self._body() if self.command in ("POST", "PUT", "DELETE") else b""
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            with state.lock:
                self._route(split.path, query, body)
        except HubError as err:
            self._error(err)
        except Exception as exc:  # a bug in the server: report it as the Hub would, and log it
            import traceback

            traceback.print_exc()
            self._error(HubError(500, f"test hub server error: {exc!r}"))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def _fault(self, name: str):
        status = self.server.faults.get(name)
        if status:
            raise HubError(int(status), f"injected fault on {name}")

    # -- routing -------------------------------------------------------------------------------
    def _route(self, path: str, query: dict, body: bytes):
        state = self.server.state
        parts = path.strip("/").split("/")  # still percent-encoded: revisions may contain %2F
        method = self.command
        if parts[:2] == ["api", "repos"] and len(parts) == 3:
            return self._repos_action(parts[2], body)
        if parts[:2] == ["api", "validate-yaml"]:
            content = json.loads(body or b"{}").get("content", "")
            match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.S)
            try:
                if match and not isinstance(yaml.safe_load(match.group(1)) or {}, dict):
                    raise HubError(400, "README metadata must be a YAML mapping")
            except yaml.YAMLError as exc:
                raise HubError(400, f"Invalid YAML in README: {exc}") from exc
            return self._json(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "whoami-v2"]:
            return self._json(200, {"type": "user", "name": "tester", "fullname": "Test User", "orgs": []})
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            repo_type = REPO_TYPES[parts[1]]
            repo_id = f"{unquote(parts[2])}/{unquote(parts[3])}"
            return self._api_repo(repo_type, repo_id, parts[4:], query, body)
        if parts[0] == "_test":
            return self._control(parts[1:], body)
        if parts[0] == "_lfs" and len(parts) == 2 and method == "PUT":
            self._fault("lfs_upload")
            oid = parts[1]
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"LFS upload content does not match its oid {oid}")
            state.lfs_objects[oid] = body
            return self._send(200)
        # git/LFS and file routes: [datasets|spaces/]ns/name(.git)/...
        repo_type = "model"
        if parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if len(parts) >= 3 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}", body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = state.repo(repo_type, f"{unquote(parts[0])}/{unquote(parts[1])}")
            return self._resolve(repo, parts[3], unquote("/".join(parts[4:])))
        raise HubError(404, f"test hub server: no route for {method} {path}")

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

    def _repos_action(self, action: str, body: bytes):
        state = self.server.state
        payload = json.loads(body or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        if not name or "/" in name:
            raise HubError(400, f"Invalid repo name {name!r}")
        repo_id = f"{org or 'tester'}/{name}"
        if action == "create" and self.command == "POST":
            state.create_repo(repo_type, repo_id, bool(payload.get("private")))
            url = f"{self.server.url}/{URL_PREFIX[repo_type]}{repo_id}"
            return self._json(200, {"url": url, "name": repo_id, "id": repo_id})
        if action == "delete" and self.command == "DELETE":
            state.repo(repo_type, repo_id)
            del state.repos[(repo_type, repo_id)]
            return self._send(200)
        raise HubError(404, f"test hub server: no route for /api/repos/{action}")

    def _api_repo(self, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes):
        state = self.server.state
        repo = state.repo(repo_type, repo_id)
        method = self.command
        action = rest[0] if rest else ""
        if action in ("", "revision") and method == "GET":
            commit = state.resolve(repo, rest[1] if action == "revision" and len(rest) > 1 else "main")
            return self._json(200, self._info(repo, commit))
        if action == "preupload" and method == "POST":
            self._fault("preupload")
            commit = state.resolve(repo, rest[1] if len(rest) > 1 else "main")
            return self._json(200, {"files": [self._preupload(commit, f) for f in json.loads(body)["files"]]})
        if action == "commit" and method == "POST":
            self._fault("commit")
            if query.get("create_pr") in ("1", "true", "True"):
                raise HubError(400, "test hub server: pull requests are not supported")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            commit = state.commit(repo, rest[1] if len(rest) > 1 else "main", lines)
            url = f"{self.server.url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
            return self._json(200, {"commitUrl": url, "commitOid": commit.oid, "pullRequestUrl": None})
        if action == "branch" and len(rest) >= 2:
            self._fault("branch")
            name = unquote("/".join(rest[1:]))
            if method == "POST":
                payload = json.loads(body or b"{}")
                if name in repo.branches:
                    raise HubError(409, f"Branch {name} already exists")
                start = state.resolve(repo, payload.get("startingPoint") or "main")
                repo.branches[name] = start.oid
                return self._json(200, {})
            if method == "DELETE":
                if name not in repo.branches:
                    raise HubError(404, f"Branch {name} not found", "RevisionNotFound")
                if name == "main":
                    raise HubError(403, "The main branch cannot be deleted")
                del repo.branches[name]
                return self._json(200, {})
        if action == "tag" and len(rest) >= 2:
            self._fault("tag")
            if method == "POST":
                payload = json.loads(body or b"{}")
                tag = payload.get("tag")
                if not tag:
                    raise HubError(400, "Missing tag name")
                if tag in repo.tags:
                    # An existing tag is never moved: 409 like the Hub.
                    raise HubError(409, f"Tag {tag} already exists")
                repo.tags[tag] = state.resolve(repo, "/".join(rest[1:])).oid
                return self._json(200, {})
            if method == "DELETE":
                tag = unquote("/".join(rest[1:]))
                if tag not in repo.tags:
                    raise HubError(404, f"Tag {tag} not found", "RevisionNotFound")
                del repo.tags[tag]
                return self._json(200, {})
        if action == "refs" and method == "GET":

            def refs(items: dict, kind: str) -> list[dict]:
                return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(items.items())]

            out = {"branches": refs(repo.branches, "heads"), "tags": refs(repo.tags, "tags"), "converts": []}
            if query.get("include_prs"):
                out["pullRequests"] = []
            return self._json(200, out)
        if action == "commits" and method == "GET":
            commit = state.resolve(repo, rest[1] if len(rest) > 1 else "main")
            items = [
                {"id": c.oid, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": "tester"}]}
                for c in state.history(repo, commit)
            ]
            return self._json(200, items)
        if action == "tree" and method == "GET":
            commit = state.resolve(repo, rest[1] if len(rest) > 1 else "main")
            path = unquote("/".join(rest[2:]))
            truthy = ("1", "true", "True")
            entries = state.entries(repo, commit, path, query.get("recursive") in truthy, query.get("expand") in truthy)
            if path and len(entries) == 1 and entries[0]["path"] == path.strip("/") and entries[0]["type"] == "file":
                # The Hub's tree endpoint lists folders; a file path is not a folder.
                raise HubError(404, f"{path} is not a folder", "EntryNotFound", {"X-Repo-Commit": commit.oid})
            return self._json(200, entries)
        if action == "paths-info" and method == "POST":
            commit = state.resolve(repo, rest[1] if len(rest) > 1 else "main")
            form = parse_qs(body.decode(), keep_blank_values=True)
            expand = (form.get("expand") or ["False"])[-1] in ("1", "true", "True")
            found = [state.entry(repo, commit, p.strip("/"), expand) for p in form.get("paths", [])]
            return self._json(200, [e for e in found if e])
        raise HubError(404, f"test hub server: no route for {method} /api/{repo_type}s/{repo_id}/{'/'.join(rest)}")

    def _info(self, repo: Repo, commit: Commit) -> dict:
        card_data = None
        readme = commit.files.get("README.md")
        if readme is not None:
            match = re.match(r"^---\s*\n(.*?)\n---\s*\n", readme.content.decode("utf-8", "replace"), re.S)
            if match:
                try:
                    card_data = yaml.safe_load(match.group(1))
                except yaml.YAMLError:
                    card_data = None
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": card_data,
            "siblings": [{"rfilename": p, "size": f.size} for p, f in sorted(commit.files.items())],
            "usedStorage": sum(f.size for f in commit.files.values()),
        }

    def _preupload(self, commit: Commit, spec: dict) -> dict:
        path, size = spec["path"], int(spec.get("size") or 0)
        sample = base64.b64decode(spec.get("sample") or "")
        lfs = path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in sample
        existing = commit.files.get(path)
        # The remote oid lets the client skip unchanged files: sha256 for LFS, git sha1 otherwise.
        oid = None if existing is None else (existing.sha256 if existing.lfs else git_blob_oid(existing.content))
        return {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes):
        self._fault("lfs_batch")
        state = self.server.state
        state.repo(repo_type, unquote(repo_id))
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HubError(400, "test hub server: only LFS uploads are supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            item = {"oid": oid, "size": size}
            if oid not in state.lfs_objects:
                item["authenticated"] = True
                item["actions"] = {"upload": {"href": f"{self.server.url}/_lfs/{oid}", "header": {}}}
            objects.append(item)
        return self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _resolve(self, repo: Repo, revision: str, path: str):
        commit = self.server.state.resolve(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        content = entry.content
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = entry.size
        status = 200
        wanted = self.headers.get("Range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if not match or (not match.group(1) and not match.group(2)):
                raise HubError(416, f"Bad range {wanted}")
            total = len(content)
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            else:
                start, end = max(total - int(match.group(2)), 0), total - 1
            if start >= total and total > 0:
                raise HubError(
                    416, f"Range {wanted} outside a {total}-byte file", headers={"Content-Range": f"*/{total}"}
                )
            content = content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            status = 206
        headers["Content-Length"] = len(content)
        self._send(status, content, headers, "application/octet-stream")


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

    # Helpers for assertions in tests (read the server's own state, not the client's view).
    def tags(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        with self.state.lock:
            return dict(self.state.repo(repo_type, repo_id).tags)

    def branches(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        with self.state.lock:
            return dict(self.state.repo(repo_type, repo_id).branches)

    def commit_count(self, repo_id: str, repo_type: str = "dataset", branch: str = "main") -> int:
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id)
            return len(self.state.history(repo, repo.commits[repo.branches[branch]]))


if __name__ == "__main__":  # python tests/hub_server.py [port]: a server for manual experiments
    import sys

    server = HubServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0, verbose=True).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
