"""The Worker the daemon generates for an app, and its configuration (API metadata, wrangler.json).

Static assets are served before the Worker; the Worker answers what is not an
asset: ``/__cached/health`` (app, version, action key, build time),
``/__cached/config`` (the deploy's plain-text vars, never secrets), files over
the asset limit from the R2 binding, and everything else through the assets
binding, whose single-page-application mode returns index.html for
client-side routes. The module is plain data plus a fixed handler: it starts in
well under Cloudflare's 1 s startup limit, whatever the app.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from cached.deploy.assets import LargeFile

MAIN_MODULE = "worker.mjs"
COMPATIBILITY_DATE = "2025-06-01"
ASSETS_BINDING = "ASSETS"
R2_BINDING = "LARGE_FILES"
MODULE_TYPE = "application/javascript+module"

_HANDLER = r"""
const json = (data, status = 200) => new Response(JSON.stringify(data), {
  status, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
});

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__cached/health") return json(APP);
    if (url.pathname === "/__cached/config") return json(CONFIG);
    let path;
    try { path = decodeURIComponent(url.pathname); } catch { path = url.pathname; }
    const large = Object.prototype.hasOwnProperty.call(LARGE, path) ? LARGE[path] : undefined;
    if (large !== undefined && (request.method === "GET" || request.method === "HEAD")) {
      if (!env.LARGE_FILES) return json({ error: "large files need the R2 binding LARGE_FILES" }, 500);
      return fromR2(request, env.LARGE_FILES, large);
    }
    return env.ASSETS.fetch(request);
  },
};

// The _headers rules (Cloudflare applies them to assets, not to a Worker's responses): applied
// here to the files served from R2, which are assets moved out only for their size.
function headersFor(path) {
  const set = {}, unset = new Set();
  for (const rule of HEADER_RULES) {
    const m = new RegExp(rule.pattern).exec(path);
    if (!m) continue;
    const groups = m.groups || {};
    for (const [name, value] of rule.set) {
      const v = value.replace(/:([A-Za-z]\w*)/g, (all, key) => (key in groups ? groups[key] : all));
      set[name] = name in set ? `${set[name]}, ${v}` : v;
    }
    for (const name of rule.unset) unset.add(name);
  }
  for (const name of unset) delete set[name];
  return set;
}

// One range of "bytes=a-b", "bytes=a-" or "bytes=-n" (RFC 9110): {offset, length}, UNSATISFIABLE,
// or null to serve the whole file (no Range, another unit, several ranges, or a malformed one).
const UNSATISFIABLE = {};
function byteRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header || "").replace(/\s+/g, ""));
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return UNSATISFIABLE;
    const length = Math.min(n, size);
    return { offset: size - length, length };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return null;
  if (start >= size) return UNSATISFIABLE;
  return { offset: start, length: last - start + 1 };
}

async function fromR2(request, bucket, large) {
  const etag = `"${large.etag}"`;
  const headers = { "content-type": large.type, "accept-ranges": "bytes", etag, ...headersFor(large.path) };
  const ifRange = request.headers.get("if-range");
  const range = ifRange !== null && ifRange !== etag ? null : byteRange(request.headers.get("range"), large.size);
  if (range === UNSATISFIABLE) {
    return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${large.size}`, "content-length": "0" } });
  }
  const head = request.method === "HEAD";
  const object = head ? await bucket.head(large.key) : await bucket.get(large.key, range ? { range } : undefined);
  if (object === null) return json({ error: "not found in R2", key: large.key }, 404);
  if (range) {
    headers["content-range"] = `bytes ${range.offset}-${range.offset + range.length - 1}/${large.size}`;
    headers["content-length"] = String(range.length);
    return new Response(head ? null : object.body, { status: 206, headers });
  }
  headers["content-length"] = String(large.size);
  return new Response(head ? null : object.body, { headers });
}
"""

_PLACEHOLDER = """export default {
  async fetch() {
    return new Response("This app has no production version yet.\\n", {
      status: 503, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
    });
  },
};
"""


@dataclass(frozen=True)
class WorkerInfo:
    """What the health endpoint says, and what the module serves from R2."""

    tenant: str
    app: str
    script_name: str
    version: int            # the app's deploy sequence on this target
    action_key: str
    build_time: str         # ISO 8601, UTC
    vars: dict[str, str] = field(default_factory=dict)
    large: tuple[LargeFile, ...] = ()
    r2_prefix: str = ""
    headers: str = ""       # the output's _headers file, applied to the files served from R2


def r2_key(prefix: str, f: LargeFile) -> str:
    """Content-addressed: an object that is there already is the same bytes."""
    return f"{prefix}/{f.digest.hash}"


def header_rules(text: str) -> list[dict[str, object]]:
    """Cloudflare's ``_headers`` format: an unindented URL pattern, then indented ``Name: value``
    lines (``! Name`` removes a header set by another rule); ``#`` starts a comment. Path patterns
    only (a rule for an absolute URL never matches a path): ``*`` is the splat, ``:name`` one segment,
    both usable in values. Returns rules with a JavaScript regex source."""
    rules: list[dict[str, object]] = []
    current: dict[str, object] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            pattern = line.strip()
            current = {"pattern": _path_regex(pattern) if pattern.startswith("/") else "(?!)", "set": [], "unset": []}
            rules.append(current)
            continue
        if current is None:
            continue
        body = line.strip()
        if body.startswith("!"):
            current["unset"].append(body[1:].strip().lower())  # type: ignore[attr-defined]
        elif ":" in body:
            name, value = body.split(":", 1)
            current["set"].append([name.strip().lower(), value.strip()])  # type: ignore[attr-defined]
    return rules


def _path_regex(pattern: str) -> str:
    out, splat = [], False
    for token in re.split(r"(\*|:[A-Za-z]\w*)", pattern):
        if token == "*":
            out.append("(?<splat>.*)" if not splat else ".*")
            splat = True
        elif token.startswith(":") and len(token) > 1:
            out.append(f"(?<{token[1:]}>[^/]+)")
        else:
            out.append(re.sub(r"[.^$+?()\[\]{}|\\/]", lambda m: "\\" + m[0], token))
    return "^" + "".join(out) + "$"


def worker_module(info: WorkerInfo) -> str:
    app = {
        "app": info.app, "tenant": info.tenant, "script": info.script_name, "version": info.version,
        "action_key": info.action_key, "build_time": info.build_time,
    }
    large = {
        "/" + f.path: {
            "path": "/" + f.path, "key": r2_key(info.r2_prefix, f), "type": f.content_type, "size": f.digest.size, "etag": f.digest.hash,
        }
        for f in info.large
    }
    consts = "".join(
        f"const {name} = {json.dumps(value, sort_keys=True, ensure_ascii=True)};\n"
        for name, value in (("APP", app), ("CONFIG", dict(info.vars)), ("LARGE", large), ("HEADER_RULES", header_rules(info.headers)))
    )
    return f"// Generated by cached for {info.tenant}/{info.app}: do not edit.\n{consts}{_HANDLER}"


def placeholder_module() -> str:
    """The first upload of a new worker: creates it without putting any app version live."""
    return _PLACEHOLDER


def bindings(vars: dict[str, str], secrets: dict[str, str], r2_bucket: str) -> list[dict[str, str]]:
    """The version's bindings: vars as plain_text, secrets as secret_text (never the secrets endpoint)."""
    out: list[dict[str, str]] = [{"type": "assets", "name": ASSETS_BINDING}]
    out += [{"type": "plain_text", "name": k, "text": v} for k, v in sorted(vars.items())]
    out += [{"type": "secret_text", "name": k, "text": v} for k, v in sorted(secrets.items())]
    if r2_bucket:
        out.append({"type": "r2_bucket", "name": R2_BINDING, "bucket_name": r2_bucket})
    return out


def version_metadata(
    *, assets_jwt: str | None, bindings: list[dict[str, str]], message: str, tag: str, rules: dict[str, str] | None = None,
) -> dict[str, object]:
    """``rules``: the output's ``_headers`` / ``_redirects`` text, which Cloudflare takes in the assets
    config (as wrangler sends them), not as files of the upload. ``assets_jwt`` None: the version keeps
    the assets of the version uploaded before it (``keep_assets``, in lieu of a completion token); the
    config is sent either way."""
    config: dict[str, object] = {"not_found_handling": "single-page-application"}
    for name, text in sorted((rules or {}).items()):
        config[name] = text
    metadata: dict[str, object] = {
        "main_module": MAIN_MODULE,
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": [],
        "bindings": bindings,
        "assets": {"jwt": assets_jwt, "config": config} if assets_jwt is not None else {"config": config},
        "annotations": {"workers/message": message, "workers/tag": tag},
        "keep_bindings": ["secret_text"],
    }
    if assets_jwt is None:
        metadata["keep_assets"] = True
    return metadata


def placeholder_metadata() -> dict[str, object]:
    return {"main_module": MAIN_MODULE, "compatibility_date": COMPATIBILITY_DATE, "bindings": []}


def wrangler_config(info: WorkerInfo, *, assets_dir: str, r2_bucket: str) -> dict[str, object]:
    """A wrangler-compatible config for the local bundle (``wrangler dev`` or Miniflare read it)."""
    config: dict[str, object] = {
        "name": info.script_name,
        "main": MAIN_MODULE,
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": [],
        "assets": {"directory": assets_dir, "binding": ASSETS_BINDING, "not_found_handling": "single-page-application"},
        "vars": dict(sorted(info.vars.items())),
    }
    if r2_bucket:
        config["r2_buckets"] = [{"binding": R2_BINDING, "bucket_name": r2_bucket}]
    return config
