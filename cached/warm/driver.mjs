// The warm builder's driver: a long-lived Node process that builds one Vite app
// again and again, on request, with Vite imported from the app's own node_modules.
//
// Started by the daemon inside the build sandbox as `node driver.mjs MODE` with
// the app's workspace as its working directory. Line protocol (one JSON object a
// line; the daemon writes requests on stdin, this process answers on fd 1):
//
//   <- {"op":"build","id":N}      build now; the daemon has finished writing the sources
//   <- {"op":"exit"}              close and exit 0 (so does the end of stdin)
//   -> {"ev":"ready","vite":V,"node":V,"pid":P}
//   -> {"ev":"start","id":N}
//   -> {"ev":"file","id":N,"path":ABS}          one per file the bundle wrote (writeBundle)
//   -> {"ev":"public","id":N,"dir":ABS,"out":ABS}  the publicDir Vite copied into outDir
//   -> {"ev":"end","id":N,"ms":T,"outDir":ABS}
//   -> {"ev":"error","id":N,"message":M}
//
// Each build is a fresh `createBuilder(...).buildApp()` exactly as `vite build`
// does it (config file loaded again, fresh plugin instances, outDir emptied and
// public/ copied by Vite itself): a warm build skips only Node's start-up and the
// import of Vite, the plugins and their native bindings. Plugin instances are
// never reused across builds: @tailwindcss/vite, for one, only ever adds to its
// set of class candidates, so a reused instance keeps CSS for classes that were
// deleted (a `vite build --watch` rebuild is not byte-identical to a cold build).
//
// Everything Vite and the plugins print goes to stderr: fd 1 carries only the
// protocol. process.env and the working directory are restored before each
// build (Vite sets variables such as NODE_ENV while resolving a config).
import { createRequire } from "node:module";
import { writeSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";

const send = (obj) => writeSync(1, JSON.stringify(obj) + "\n");
process.stdout.write = process.stderr.write.bind(process.stderr);

const cwd = process.cwd();
const mode = process.argv[2] || undefined;
const pristineEnv = { ...process.env };

function restoreProcess() {
  for (const key of Object.keys(process.env)) if (!(key in pristineEnv)) delete process.env[key];
  Object.assign(process.env, pristineEnv);
  if (process.cwd() !== cwd) process.chdir(cwd);
}

// The app's own Vite, resolved the way the app's `vite` import would be (through
// the package's exports), never from this file's location.
const require = createRequire(resolve(cwd, "package.json"));
const vitePath = require.resolve("vite");
const vite = await import(pathToFileURL(vitePath).href);

function reporter(id) {
  let config = null;
  return {
    name: "cached:warm-reporter",
    enforce: "post",
    configResolved(resolved) {
      config = resolved;
    },
    writeBundle: {
      order: "post",
      sequential: true,
      handler(options, bundle) {
        const dir = resolve(cwd, options.dir ?? (options.file ? resolve(options.file, "..") : "dist"));
        for (const [fileName, item] of Object.entries(bundle)) {
          send({ ev: "file", id, path: resolve(dir, fileName) });
          if (item.type === "chunk" && item.map && options.sourcemap && options.sourcemap !== "inline") {
            send({ ev: "file", id, path: resolve(dir, item.sourcemapFileName ?? fileName + ".map") });
          }
        }
      },
    },
    buildEnd() {
      if (config) {
        const publicDir = config.publicDir && config.build.copyPublicDir ? config.publicDir : "";
        send({ ev: "public", id, dir: publicDir, out: resolve(config.root, config.build.outDir) });
      }
    },
  };
}

async function build(id) {
  restoreProcess();
  const started = performance.now();
  send({ ev: "start", id });
  try {
    const builder = await vite.createBuilder({ mode, plugins: [reporter(id)], build: {} }, null);
    await builder.buildApp();
    const outDir = resolve(builder.config.root, builder.config.build.outDir);
    send({ ev: "end", id, ms: Math.round(performance.now() - started), outDir });
  } catch (e) {
    send({ ev: "error", id, message: String((e && e.stack) || e).slice(0, 8000) });
  }
}

let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    send({ ev: "error", id: -1, message: "unreadable request" });
    return;
  }
  if (msg.op === "build") queue = queue.then(() => build(msg.id));
  else if (msg.op === "exit") queue.then(() => process.exit(0));
});
lines.on("close", () => queue.then(() => process.exit(0)));

send({ ev: "ready", vite: vite.version, node: process.version, pid: process.pid });
