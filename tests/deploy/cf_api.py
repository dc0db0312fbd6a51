"""A local stand-in for the Cloudflare API that checks every request as cloudflare-workers.md documents it.

It keeps what Cloudflare keeps (the asset hashes it holds, workers, versions,
deployments) so that the content-addressed upload can be observed: a session
lists only the hashes the account lacks. Each check that fails is recorded in
``violations`` (and answered 400), so a test asserts there are none. The asset
hash is recomputed here with its own code, from the uploaded bytes and from the
files the test says the app built.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import blake3

BUCKET_SIZE = 2  # small buckets, so a deploy sends several (in parallel)
EXPECTED_TYPES = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}
BINDING_TYPES = {"plain_text", "secret_text", "r2_bucket", "assets"}
# Cloudflare reads these from the assets directory; an API upload passes their text in the
# assets config (wrangler's deploy does), and they are never served as files.
RULE_FILES = ("_headers", "_redirects")
ASSET_CONFIG_KEYS = {"not_found_handling", "html_handling", "run_worker_first", "_headers", "_redirects"}


def reference_hash(data: bytes, path: str) -> str:
    """The documented algorithm, written independently of cached.deploy.assets."""
    ext = PurePosixPath(path).suffix.removeprefix(".")
    return blake3.blake3((base64.b64encode(data).decode() + ext).encode()).hexdigest()[:32]


@dataclass
class Call:
    method: str
    path: str
    status: int
    sent: int = 0  # bytes of the request: its request line, headers and body as received


@dataclass
class Script:
    name: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    subdomain: dict[str, Any] | None = None

    @property
    def live(self) -> str | None:
        return self.deployments[-1]["versions"][0]["version_id"] if self.deployments else None


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int
    message: str
    headers: dict[str, str]
    times: int
    after: bool = False  # the request takes effect, then the failure is answered (a 5xx after the work was done)


class FakeCloudflare:
    def __init__(self, *, account_id: str = "acct0123456789", token: str = "cf-test-token-0123456789") -> None:
        self.account_id = account_id
        self.token = token
        self.subdomain = "cachedtest"
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.completions: dict[str, dict[str, Any]] = {}
        self.scripts: dict[str, Script] = {}
        self.calls: list[Call] = []
        self.uploaded: list[str] = []            # asset hashes received, in order
        self.upload_requests = 0
        self.violations: list[str] = []
        self.failures: list[Failure] = []
        self.expected_files: dict[str, dict[str, bytes]] = {}  # script -> path -> bytes the app built
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/client/v4"

    def start(self) -> "FakeCloudflare":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls ---------------------------------------------------------------
    def fail(self, method: str, pattern: str, status: int, *, code: int = 0, message: str = "", times: int = 1, headers: dict[str, str] | None = None, after: bool = False) -> None:
        with self.lock:
            self.failures.append(Failure(method, re.compile(pattern), status, code, message, headers or {}, times, after))

    def clear_failures(self) -> None:
        with self.lock:
            self.failures.clear()

    def mark(self) -> tuple[int, int]:
        """A point to count from: (calls so far, uploads so far)."""
        with self.lock:
            return len(self.calls), len(self.uploaded)

    def uploaded_since(self, mark: tuple[int, int]) -> list[str]:
        with self.lock:
            return self.uploaded[mark[1]:]

    def calls_since(self, mark: tuple[int, int]) -> list[Call]:
        with self.lock:
            return self.calls[mark[0]:]

    # -- dispatch --------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                head = len(self.requestline) + 2 + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 2
                status, payload, headers = api.handle(self.command, self.path, dict(self.headers.items()), body, sent=head + len(body))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, *, sent: int = 0) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(raw_path)
        path, query = url.path, parse_qs(url.query)
        status, payload, extra = self._route(method, path, query, {k.lower(): v for k, v in headers.items()}, body)
        with self.lock:
            self.calls.append(Call(method, path, status, sent or len(body)))
        return status, payload, extra

    def _violation(self, text: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.violations.append(text)
        return _error(400, 10021, f"test server: {text}")

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        injected = None
        with self.lock:
            for f in self.failures:
                if f.times > 0 and f.method == method and f.pattern.search(path):
                    f.times -= 1
                    injected = f
                    break
        if injected is not None:
            if injected.after:
                self._route_checked(method, path, query, headers, body)
            status, payload, _ = _error(injected.status, injected.code, injected.message or f"injected {injected.status}")
            return status, payload, injected.headers
        return self._route_checked(method, path, query, headers, body)

    def _route_checked(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        prefix = f"/client/v4/accounts/{self.account_id}"
        if not path.startswith(prefix):
            return self._violation(f"{method} {path}: not under {prefix}")
        rest = path[len(prefix):]
        auth = headers.get("authorization", "")
        if rest == "/workers/assets/upload":
            return self._upload(method, query, headers, body, auth)
        if auth != f"Bearer {self.token}":
            return _error(401, 10000, "Authentication error")
        m = re.fullmatch(r"/workers/services/([^/]+)", rest)
        if m and method == "GET":
            script = self.scripts.get(m[1])
            return (_ok({"id": m[1], "default_environment": {"environment": "production"}}) if script else _error(404, 10007, "This Worker does not exist on your account."))
        if rest == "/workers/subdomain" and method == "GET":
            return _ok({"subdomain": self.subdomain})
        m = re.fullmatch(r"/workers/scripts/([^/]+)(/.*)?", rest)
        if not m:
            return self._violation(f"{method} {rest}: no such endpoint")
        name, sub = m[1], m[2] or ""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,53}", name) or "_" in name:
            return self._violation(f"script name {name!r} is not a DNS label of at most 54 characters")
        if sub == "" and method == "PUT":
            return self._script_upload(name, headers, body, create=True)
        if sub == "/versions" and method == "POST":
            return self._script_upload(name, headers, body, create=False)
        if sub == "/versions" and method == "GET":
            return self._list_versions(name)
        if sub == "/assets-upload-session" and method == "POST":
            return self._session(name, headers, body)
        if sub == "/deployments" and method == "POST":
            return self._deploy(name, query, headers, body)
        if sub == "/subdomain" and method == "POST":
            data = _json(headers, body)
            if data != {"enabled": True, "previews_enabled": True}:
                return self._violation(f"subdomain body {data!r}")
            if name not in self.scripts:
                return _error(404, 10007, "This Worker does not exist on your account.")
            self.scripts[name].subdomain = data
            return _ok(data)
        if sub == "/secrets":
            return self._violation("the secrets endpoint was called: it deploys a version by itself")
        return self._violation(f"{method} /workers/scripts/{name}{sub}: not expected")

    # -- assets ------------------------------------------------------------------------
    def _session(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        data = _json(headers, body)
        manifest = data.get("manifest") if isinstance(data, dict) else None
        if not isinstance(manifest, dict) or not manifest:
            return self._violation("upload session without a manifest")
        for key, entry in manifest.items():
            if key.lstrip("/") in RULE_FILES:
                return self._violation(f"{key} is in the upload manifest: Cloudflare takes it in the assets config")
            if not key.startswith("/") or "\\" in key or not isinstance(entry, dict) or set(entry) != {"hash", "size"}:
                return self._violation(f"manifest entry {key!r}: {entry!r}")
            if not re.fullmatch(r"[0-9a-f]{32}", str(entry["hash"])) or not isinstance(entry["size"], int):
                return self._violation(f"manifest entry {key!r}: bad hash or size")
        expected = self.expected_files.get(name)
        if expected is not None:
            want = {"/" + p: {"hash": reference_hash(b, p), "size": len(b)} for p, b in expected.items() if len(b) <= 25 << 20 and p not in RULE_FILES}
            if manifest != want:
                diff = sorted(k for k in set(manifest) | set(want) if manifest.get(k) != want.get(k))[:3]
                return self._violation(f"manifest differs from the files the app built: {diff}")
        with self.lock:
            missing = sorted({e["hash"] for e in manifest.values()} - self.held)
            jwt = "upload-" + uuid.uuid4().hex
            by_hash = {e["hash"]: (k, e["size"]) for k, e in manifest.items()}
            assets = {k: e["hash"] for k, e in manifest.items()}
            if missing:
                self.sessions[jwt] = {"script": name, "pending": set(missing), "by_hash": by_hash, "completion": "done-" + uuid.uuid4().hex, "assets": assets}
            else:
                self.completions[jwt] = {"script": name, "assets": assets}
        buckets = [missing[i:i + BUCKET_SIZE] for i in range(0, len(missing), BUCKET_SIZE)]
        return _ok({"jwt": jwt, "buckets": buckets})

    def _upload(self, method: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes, auth: str) -> tuple[int, Any, dict[str, str]]:
        if method != "POST" or query.get("base64") != ["true"]:
            return self._violation("asset upload must be POST ...?base64=true")
        jwt = auth.removeprefix("Bearer ")
        if auth == f"Bearer {self.token}":
            return self._violation("asset upload sent with the API token instead of the upload session's JWT")
        session = self.sessions.get(jwt)
        if session is None:
            return _error(401, 10000, "invalid upload token")
        parts = _multipart(headers, body)
        if parts is None:
            return self._violation("asset upload is not multipart/form-data")
        received = []
        for part in parts:
            h = part["name"]
            if part["filename"] != h:
                return self._violation(f"part {h}: filename {part['filename']!r} is not the hash")
            if h not in session["by_hash"]:
                return self._violation(f"part {h}: not in the session's manifest")
            path, size = session["by_hash"][h]
            try:
                data = base64.b64decode(part["data"], validate=True)
            except ValueError:
                return self._violation(f"part {h}: content is not base64")
            if len(data) != size or reference_hash(data, path) != h:
                return self._violation(f"part {h} ({path}): bytes do not hash to the manifest's hash")
            ext = PurePosixPath(path).suffix.removeprefix(".")
            kind = part["content_type"]
            if ext in EXPECTED_TYPES and kind != EXPECTED_TYPES[ext]:
                return self._violation(f"part {h} ({path}): Content-Type {kind!r}, expected {EXPECTED_TYPES[ext]!r}")
            if kind.startswith("text/") and "charset=utf-8" not in kind:
                return self._violation(f"part {h} ({path}): text type without charset")
            received.append(h)
        with self.lock:
            self.upload_requests += 1
            for h in received:
                if h not in session["pending"]:
                    self.violations.append(f"asset {h} sent twice or not asked for")
                session["pending"].discard(h)
                self.held.add(h)
                self.uploaded.append(h)
            if not session["pending"] and not session.get("completed"):
                session["completed"] = True
                self.completions[session["completion"]] = {"script": session["script"], "assets": session["assets"]}
                return 201, {"success": True, "errors": [], "messages": [], "result": {"jwt": session["completion"]}}, {}
        return 202, {"success": True, "errors": [], "messages": [], "result": {}}, {}

    # -- scripts, versions, deployments -------------------------------------------------
    def _script_upload(self, name: str, headers: dict[str, str], body: bytes, *, create: bool) -> tuple[int, Any, dict[str, str]]:
        parts = _multipart(headers, body)
        if not parts or parts[0]["name"] != "metadata":
            return self._violation("script upload: the first part must be `metadata`")
        try:
            metadata = json.loads(parts[0]["data"])
        except ValueError:
            return self._violation("metadata is not JSON")
        modules = {p["name"]: p for p in parts[1:]}
        main = metadata.get("main_module")
        if main not in modules:
            return self._violation(f"main_module {main!r} has no part")
        for p in parts[1:]:
            if p["content_type"] != "application/javascript+module" or p["filename"] != p["name"]:
                return self._violation(f"module part {p['name']}: {p['content_type']!r}, filename {p['filename']!r}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(metadata.get("compatibility_date", ""))):
            return self._violation("compatibility_date missing")
        for b in metadata.get("bindings", []):
            if b.get("type") not in BINDING_TYPES or not b.get("name"):
                return self._violation(f"binding {b!r}")
        assets = metadata.get("assets")
        keep = metadata.get("keep_assets")
        version_assets: dict[str, str] | None = None  # path -> hash of the assets the new version serves
        if keep is not None and keep is not True:
            return self._violation(f"keep_assets is {keep!r}, not true")
        if keep:  # in lieu of a completion token: the assets of the version uploaded before this one
            if assets is not None and "jwt" in assets:
                return self._violation("keep_assets sent with an assets.jwt: it is used in lieu of the completion token")
            with self.lock:
                script = self.scripts.get(name)
                previous = script.versions[-1] if script is not None and script.versions else None
            if script is None and not create:
                return _error(404, 10007, "This Worker does not exist on your account.")
            if create or previous is None or previous.get("assets") is None:
                return self._violation("keep_assets for a worker whose latest version has no assets to keep")
            version_assets = dict(previous["assets"])
            expected = self.expected_files.get(name)
            if expected is not None:
                want = {"/" + p: reference_hash(b, p) for p, b in expected.items() if len(b) <= 25 << 20 and p not in RULE_FILES}
                if version_assets != want:
                    return self._violation("keep_assets kept assets that differ from the files the app built")
        if assets is not None:
            if not keep:
                completion = self.completions.get(assets.get("jwt", ""))
                if completion is None or completion["script"] != name:
                    return self._violation("assets.jwt is not a completion token of this script's upload session")
                version_assets = dict(completion["assets"])
            if assets.get("config", {}).get("not_found_handling") != "single-page-application":
                return self._violation("assets.config.not_found_handling is not single-page-application")
            config = assets.get("config", {})
            if set(config) - ASSET_CONFIG_KEYS:
                return self._violation(f"assets.config keys {sorted(set(config) - ASSET_CONFIG_KEYS)} are not documented")
            for rule_file in RULE_FILES:
                if rule_file in config and not isinstance(config[rule_file], str):
                    return self._violation(f"assets.config.{rule_file} is not the file's text")
                expected = self.expected_files.get(name, {}).get(rule_file)
                if expected is not None and config.get(rule_file) != expected.decode():
                    return self._violation(f"assets.config.{rule_file} is not the text of the app's {rule_file}")
        with self.lock:
            script = self.scripts.get(name)
            if create:
                if script is not None:
                    self.violations.append(f"PUT on existing worker {name}: it would deploy a version at once")
                script = self.scripts.setdefault(name, Script(name))
            elif script is None:
                return _error(404, 10007, "This Worker does not exist on your account.")
            version = {
                "id": str(uuid.uuid4()), "number": len(script.versions) + 1, "metadata": metadata,
                "modules": {k: p["data"].decode() for k, p in modules.items()}, "assets": version_assets,
            }
            script.versions.append(version)
            if create:  # a PUT deploys what it uploads
                script.deployments.append({"strategy": "percentage", "versions": [{"version_id": version["id"], "percentage": 100}]})
        return _ok({"id": version["id"], "number": version["number"], "metadata": {"source": "api"}})

    def _list_versions(self, name: str) -> tuple[int, Any, dict[str, str]]:
        """``GET .../versions``: ``result.items``, newest first, each with ``id``, ``number``, ``metadata``, ``annotations``."""
        with self.lock:
            script = self.scripts.get(name)
            if script is None:
                return _error(404, 10007, "This Worker does not exist on your account.")
            items = [
                {"id": v["id"], "number": v["number"], "metadata": {"source": "api"},
                 "annotations": {k: a for k, a in (v["metadata"].get("annotations") or {}).items() if k in ("workers/message", "workers/tag")}}
                for v in reversed(script.versions)
            ]
        return _ok({"items": items})

    def _deploy(self, name: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        data = _json(headers, body)
        if not isinstance(data, dict) or data.get("strategy") != "percentage":
            return self._violation(f"deployment body {data!r}")
        versions = data.get("versions") or []
        if sum(v.get("percentage", 0) for v in versions) != 100:
            return self._violation("deployment percentages do not add up to 100")
        with self.lock:
            script = self.scripts.get(name)
            if script is None:
                return _error(404, 10007, "This Worker does not exist on your account.")
            known = {v["id"] for v in script.versions}
            if any(v.get("version_id") not in known for v in versions):
                return self._violation("deployment of an unknown version")
            script.deployments.append({**data, "force": query.get("force") == ["true"]})
        return _ok({"id": str(uuid.uuid4()), "versions": versions})


def _ok(result: Any) -> tuple[int, Any, dict[str, str]]:
    return 200, {"success": True, "errors": [], "messages": [], "result": result}, {}


def _error(status: int, code: int, message: str) -> tuple[int, Any, dict[str, str]]:
    return status, {"success": False, "errors": [{"code": code, "message": message}] if code else [], "messages": [], "result": None}, {}


def _json(headers: dict[str, str], body: bytes) -> Any:
    if not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _multipart(headers: dict[str, str], body: bytes) -> list[dict[str, Any]] | None:
    kind = headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return None
    msg = message_from_bytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
    parts = []
    for part in msg.get_payload():
        parts.append({
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "content_type": str(part.get("content-type", "")),
            "data": part.get_payload(decode=True),
        })
    return parts
