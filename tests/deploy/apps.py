"""Tiny apps for deploy tests: a Node build that behaves like Vite's output without Vite.

``dist/index.html`` references ``assets/index-<hash>.js`` and
``assets/index-<hash>.css``, named after their content, so changing one source
file renames its chunk and rewrites index.html, as Vite does. ``BIG_MIB`` in
the build env adds ``media/big.bin`` of that many MiB (deterministic bytes);
``EDGE_RULES`` adds ``_headers`` and ``_redirects`` (``HEADERS_TEXT``, ``REDIRECTS_TEXT``).
"""

from __future__ import annotations

from support import tiny_app

BUILD = r"""
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
const h = (s) => createHash("sha256").update(s).digest("hex").slice(0, 8);
const js = readFileSync("src/main.js", "utf8");
const css = readFileSync("src/style.css", "utf8");
mkdirSync("dist/assets", { recursive: true });
const jsName = `assets/index-${h(js)}.js`, cssName = `assets/index-${h(css)}.css`;
writeFileSync(`dist/${jsName}`, js);
writeFileSync(`dist/${cssName}`, css);
writeFileSync("dist/favicon.svg", '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
writeFileSync("dist/index.html", `<!doctype html><html><head><title>${process.env.TITLE ?? "tiny"}</title><link rel="stylesheet" href="/${cssName}"></head><body><div id="root"></div><script type="module" src="/${jsName}"></script></body></html>\n`);
if (process.env.EDGE_RULES) {
  writeFileSync("dist/_headers", "# rules for the edge\n/assets/*\n  X-Cached-Rule: assets\n/media/*\n  X-Cached-Rule: media :splat\n  Cache-Control: public, max-age=60\n");
  writeFileSync("dist/_redirects", "/old /new 301\n/docs/* /guide/:splat 302\n");
}
const mib = Number(process.env.BIG_MIB ?? 0);
if (mib > 0) {
  mkdirSync("dist/media", { recursive: true });
  const buf = Buffer.alloc(mib * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync("dist/media/big.bin", buf);
}
"""


def spa_app(js: str = "console.log('hello');\n", css: str = "body { color: #123; }\n") -> dict[str, bytes]:
    return tiny_app(BUILD, extra={"src/main.js": js.encode(), "src/style.css": css.encode()})


HEADERS_TEXT = "# rules for the edge\n/assets/*\n  X-Cached-Rule: assets\n/media/*\n  X-Cached-Rule: media :splat\n  Cache-Control: public, max-age=60\n"
REDIRECTS_TEXT = "/old /new 301\n/docs/* /guide/:splat 302\n"
