"""A fixed extension -> MIME map: the same answer on every host (never the host's mime tables).

``text/*`` types carry ``; charset=utf-8``, as Cloudflare's asset upload expects.
"""

from __future__ import annotations

_TYPES = {
    "html": "text/html", "htm": "text/html", "css": "text/css", "js": "text/javascript",
    "mjs": "text/javascript", "cjs": "text/javascript", "txt": "text/plain", "csv": "text/csv",
    "md": "text/markdown", "xml": "text/xml", "json": "application/json", "map": "application/json",
    "webmanifest": "application/manifest+json", "wasm": "application/wasm", "pdf": "application/pdf",
    "zip": "application/zip", "gz": "application/gzip", "svg": "image/svg+xml", "png": "image/png",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
    "avif": "image/avif", "ico": "image/x-icon", "bmp": "image/bmp", "woff": "font/woff",
    "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf", "eot": "application/vnd.ms-fontobject",
    "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
}
DEFAULT = "application/octet-stream"


def extension(path: str) -> str:
    """The last extension without its dot, case kept: ``"gz"`` for ``a.tar.gz``, ``""`` for ``.env``.

    Node's ``path.extname`` rules (wrangler's): a leading dot alone is no extension.
    """
    base = path.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:
        return ""
    return base[dot + 1:]


def content_type(path: str) -> str:
    kind = _TYPES.get(extension(path).lower(), DEFAULT)
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind
