// The warm builder's driver: a long-lived Node process that builds one Vite app
// again and again, on request, with Vite imported from the app's own node_modules.
//
// Started by the daemon inside the build sandbox as `node driver.mjs MODE REBUILD`
// with the app's workspace as its working directory (REBUILD: "fresh", the
// default, or "session"). Line protocol (one JSON object a line; the daemon writes
// requests on stdin, this process answers on fd 1):
//
//   <- {"op":"build","id":N,"changed":[REL...],"removed":[REL...]}
//                                  build now; the daemon has finished writing the sources
//                                  (changed/removed: what it wrote and deleted since the last build)
//   <- {"op":"exit"}              close and exit 0 (so does the end of stdin)
//   -> {"ev":"ready","vite":V,"node":V,"pid":P}
//   -> {"ev":"start","id":N}
//   -> {"ev":"file","id":N,"path":ABS}          one per file the bundle wrote (writeBundle)
//   -> {"ev":"public","id":N,"dir":ABS,"out":ABS}  the publicDir Vite copied into outDir
//   -> {"ev":"end","id":N,"ms":T,"outDir":ABS,"how":"session-start"|"rebuild"|"fresh","why":W}
//   -> {"ev":"error","id":N,"message":M}
//
// Two ways to build, both giving the bytes of a cold `vite build`:
//
// - fresh: a new `createBuilder(...).buildApp()` exactly as `vite build` does it
//   (config file loaded again, fresh plugin instances, outDir emptied, public/
//   copied by Vite itself). It skips only Node's start-up and the imports.
//
// - session (`cached serve --warm-rebuild session`): one `vite build --watch` session lives across builds,
//   so Vite's own plugins and Rolldown's bundler (its resolver and file caches,
//   the parsed config) are kept, and a rebuild is a full scan of the module graph
//   (Rolldown's incremental mode is off: every module is loaded and transformed
//   again). What is NOT kept is the app's own plugins' state: every plugin of the
//   app's config is a proxy that calls into a set of instances made fresh for
//   each rebuild (the config file evaluated again, their `config` and
//   `configResolved` hooks replayed). @tailwindcss/vite, for one, only ever adds
//   to its set of class candidates, so a reused instance would keep CSS for
//   classes that were deleted.
//   Rolldown's watcher polls the files of the last build's module graph (the
//   daemon writes a new inode for each changed file; node_modules is excluded: it
//   cannot change while this process lives). A rebuild answers a request only
//   when every changed file was one the last build watched, nothing was removed
//   and no `.env*` file changed, and only with a bundle that started after the
//   watcher had seen every changed file. Anything else (a new or deleted file,
//   public/, .env, a plugin that replaces itself per environment, a failed build,
//   changes the watcher does not report in time) starts a new session, which is a
//   fresh build.
//
// Everything Vite and the plugins print goes to stderr: fd 1 carries only the
// protocol. process.env and the working directory are restored before each
// fresh build or new session (Vite sets variables such as NODE_ENV while
// resolving a config).
import { createRequire } from "node:module";
import { writeSync } from "node:fs";
import { resolve, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";

const send = (obj) => writeSync(1, JSON.stringify(obj) + "\n");
process.stdout.write = process.stderr.write.bind(process.stderr);

const cwd = process.cwd();
const mode = process.argv[2] || undefined;
const askedMode = process.argv[3] || "fresh";
const pristineEnv = { ...process.env };
const CHANGE_WAIT_MS = 2000;   // a changed file the watcher has not reported by then: new session
const POLL_MS = 15;

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

// Sessions need Rolldown's watcher (Vite 8 and later) and Vite's config API.
const sessionsPossible =
  Number(String(vite.version).split(".")[0]) >= 8 &&
  ["build", "loadConfigFromFile", "mergeConfig"].every((name) => typeof vite[name] === "function");
const rebuildMode = askedMode === "session" && sessionsPossible ? "session" : "fresh";

// ------------------------------------------------------------------ reporting

/** Collects what one bundle wrote; the driver sends it when it answers a request. */
function reporter(sink) {
  let config = null;
  return {
    name: "cached:warm-reporter",
    enforce: "post",
    configResolved(resolved) {
      config = resolved;
    },
    buildStart() {
      sink.files = [];
      sink.public = null;
      sink.closed = new Promise((done) => (sink.close = done));
    },
    // Last of all: a plugin's closeBundle may still write into outDir, and the
    // daemon's listing of it must see that (a watch session closes its bundle
    // after BUNDLE_END).
    closeBundle: {
      order: "post",
      sequential: true,
      handler() {
        sink.close?.();
      },
    },
    writeBundle: {
      order: "post",
      sequential: true,
      handler(options, bundle) {
        const dir = resolve(cwd, options.dir ?? (options.file ? resolve(options.file, "..") : "dist"));
        for (const [fileName, item] of Object.entries(bundle)) {
          sink.files.push(resolve(dir, fileName));
          if (item.type === "chunk" && item.map && options.sourcemap && options.sourcemap !== "inline") {
            sink.files.push(resolve(dir, item.sourcemapFileName ?? fileName + ".map"));
          }
        }
      },
    },
    buildEnd() {
      if (config) {
        const publicDir = config.publicDir && config.build.copyPublicDir ? config.publicDir : "";
        sink.public = { dir: publicDir, out: resolve(config.root, config.build.outDir) };
        sink.outDir = resolve(config.root, config.build.outDir);
      }
    },
  };
}

function answer(id, sink, started, how, why) {
  for (const path of sink.files) send({ ev: "file", id, path });
  if (sink.public) send({ ev: "public", id, dir: sink.public.dir, out: sink.public.out });
  send({ ev: "end", id, ms: Math.round(performance.now() - started), outDir: sink.outDir, how, why });
}

// ------------------------------------------------------------------ fresh builds

async function freshBuild(id, started, why) {
  restoreProcess();
  const sink = { files: [], public: null, outDir: "" };
  const builder = await vite.createBuilder({ mode, plugins: [reporter(sink)], build: {} }, null);
  await builder.buildApp();
  sink.outDir = resolve(builder.config.root, builder.config.build.outDir);
  answer(id, sink, started, "fresh", why);
}

// ------------------------------------------------------------------ sessions

const CONFIG_ENV = () => ({ command: "build", mode: mode ?? "production", isSsrBuild: false, isPreview: false });

async function flatPlugins(list) {
  const out = [];
  for (const item of await list) {
    const p = await item;
    if (Array.isArray(p)) out.push(...(await flatPlugins(p)));
    else if (p) out.push(p);
  }
  return out;
}

async function loadUserConfig() {
  const loaded = await vite.loadConfigFromFile(CONFIG_ENV(), undefined, cwd, undefined, undefined, undefined);
  const config = loaded ? loaded.config : {};
  return { config, plugins: await flatPlugins(config.plugins ?? []) };
}

// What Vite gives the config hooks as `this` (its minimal plugin context), for
// the replays of a watch session (the only place they are called from here).
const HOOK_CONTEXT = {
  meta: { viteVersion: vite.version, rollupVersion: vite.rolldownVersion ?? "", watchMode: true },
  error(e) {
    throw typeof e === "string" ? new Error(e) : e;
  },
  warn(m) {
    process.stderr.write(`${typeof m === "string" ? m : m?.message}\n`);
  },
  info() {},
  debug() {},
};

const handlerOf = (hook) => (typeof hook === "function" ? hook : hook && typeof hook.handler === "function" ? hook.handler : null);

/**
 * A stand-in for the app's plugin number `index` that forwards every hook to that
 * plugin's instance of the current rebuild. Its shape (function or object hook,
 * filter, order, sequential) is the original's, which Vite and Rolldown read once.
 */
function proxyOf(session, index, original) {
  const proxy = {};
  const forward = (key) =>
    function (...args) {
      const fn = handlerOf(session.current[index][key]);
      return fn ? fn.apply(this, args) : undefined;
    };
  for (const key of Object.keys(original)) {
    const value = original[key];
    if (key === "applyToEnvironment" && typeof value === "function") {
      // A plugin that gives another plugin for an environment keeps that one for
      // the session's life, out of reach of the fresh instances: no rebuilds then.
      proxy[key] = async function (...args) {
        const result = await session.current[index][key].apply(this, args);
        if (typeof result !== "boolean" && result != null) session.refuseAll(`${original.name} makes a plugin per environment`);
        return result;
      };
    } else if (key === "api") {
      Object.defineProperty(proxy, "api", { enumerable: true, get: () => session.current[index].api });
    } else if (typeof value === "function") {
      proxy[key] = forward(key);
    } else if (value && typeof value === "object" && typeof value.handler === "function") {
      proxy[key] = { ...value, handler: forward(key) };
    } else {
      proxy[key] = value;
    }
  }
  const ownStart = proxy.buildStart;
  // No rebuild goes past buildStart before it is admitted (see Session.enter).
  proxy.buildStart = {
    ...(ownStart && typeof ownStart === "object" ? ownStart : {}),
    async handler(...args) {
      await session.enter();
      const fn = handlerOf(session.current[index].buildStart);
      return fn ? fn.apply(this, args) : undefined;
    },
  };
  return proxy;
}

/**
 * One `vite build --watch` of the app. Rolldown's watcher starts a bundle when it
 * sees a change; every bundle waits in buildStart until `enter` admits it for a
 * request: one has arrived (so the daemon has written every file: it writes
 * while this process is frozen, and a frozen poller sees only the final state)
 * and the watcher has reported each of its changed files (so Vite's own
 * watchChange hooks have run for them). Only a bundle admitted for a request
 * answers it.
 */
class Session {
  constructor() {
    this.watcher = null;
    this.current = [];           // the app's plugin instances the proxies call
    this.names = [];
    this.resolved = null;
    this.usable = true;
    this.why = "";
    this.sink = { files: [], public: null, outDir: "", watched: new Set() };
    this.watchFiles = new Set(); // what the last bundle read
    this.seen = new Set();       // changed files the watcher reported since the last answer
    this.bundles = [];           // {admitted, done, error, sink}, one per bundle since the last answer
    this.entering = null;        // the current bundle's admission
    this.request = null;         // {id, wanted, until}
    this.closing = false;
    this.builds = 0;
    this.waiters = [];
  }

  wake() {
    for (const wake of this.waiters.splice(0)) wake();
  }

  sleep() {
    return new Promise((wake) => {
      this.waiters.push(wake);
      setTimeout(wake, 25);
    });
  }

  async start(request) {
    restoreProcess();
    const { config, plugins } = await loadUserConfig();
    this.current = plugins;
    this.names = plugins.map((p) => p.name);
    this.request = request;
    const proxies = plugins.map((p, i) => proxyOf(this, i, p));
    const self = this;
    const sessionPlugin = {
      name: "cached:warm-session",
      configResolved(resolved) {
        self.resolved = resolved;
        // `vite build` builds the environments itself when the config has a
        // builder (a plugin may add one), and an SSR build its own way: a watch
        // session is one client build, so such an app is built fresh.
        if (resolved.builder) throw new NotForSessions("the app's config has a builder (several environments)");
        if (resolved.build?.ssr) throw new NotForSessions("the app builds for SSR");
      },
      async buildStart() {
        await self.enter();
      },
      buildEnd() {
        // What this bundle read: its modules and the files plugins asked to watch.
        const watched = new Set();
        for (const id of this.getModuleIds()) if (!id.includes("\0") && id.startsWith("/")) watched.add(id.split("?")[0]);
        for (const file of this.getWatchFiles?.() ?? []) watched.add(resolve(cwd, file));
        self.sink.watched = watched;
      },
    };
    const inline = vite.mergeConfig(
      { ...config, plugins: proxies },
      {
        configFile: false,
        mode,
        plugins: [sessionPlugin, reporter(this.sink)],
        build: {
          watch: {
            buildDelay: 0,
            exclude: ["**/node_modules/**"],
            chokidar: { usePolling: true, interval: POLL_MS },
          },
        },
      },
    );
    this.watcher = await vite.build(inline);
    if (!this.watcher || typeof this.watcher.on !== "function") throw new Error("vite build --watch returned no watcher");
    this.watcher.on("change", (path) => {
      this.seen.add(resolve(cwd, path));
      this.wake();
    });
    this.watcher.on("event", async (event) => {
      if (event.code === "BUNDLE_END") {
        await this.sink.closed;
        this.finish(null);
      }
      else if (event.code === "ERROR") {
        this.refuseAll("its last build failed");
        this.finish(event.error ?? new Error("build failed"));
      }
    });
  }

  /** Admits the bundle that is starting (once, whichever buildStart asks first), then freshens the plugins. */
  enter() {
    if (!this.entering) {
      const bundle = { admitted: null, done: false, error: null, sink: null };
      this.bundles.push(bundle);
      this.entering = (async () => {
        for (;;) {
          if (this.closing) throw new Error("the session is closing");
          const req = this.request;
          if (req && req.wanted.every((p) => this.seen.has(p))) {
            bundle.admitted = req.id;
            break;
          }
          if (req && Date.now() > req.until) throw new Error("the watcher did not report every changed file");
          await this.sleep();
        }
        if (this.builds++ > 0) await this.freshen();
      })();
      this.entering.catch(() => this.refuseAll("a rebuild could not be admitted"));
    }
    return this.entering;
  }

  finish(error) {
    const bundle = this.bundles[this.bundles.length - 1];
    this.entering = null;
    if (bundle && !bundle.done) {
      bundle.done = true;
      bundle.error = error;
      bundle.sink = { files: [...this.sink.files], public: this.sink.public, outDir: this.sink.outDir };
      if (!error) this.watchFiles = this.sink.watched;
    }
    this.wake();
  }

  refuseAll(why) {
    if (this.usable) {
      this.usable = false;
      this.why = why;
    }
  }

  /** New instances of the app's plugins: the config file evaluated again, their config hooks replayed. */
  async freshen() {
    try {
      const { config, plugins } = await loadUserConfig();
      const names = plugins.map((p) => p.name);
      if (names.length !== this.names.length || names.some((n, i) => n !== this.names[i])) {
        throw new Error("the app's config gave other plugins when evaluated again");
      }
      const env = CONFIG_ENV();
      for (const p of plugins) {
        const fn = handlerOf(p.config);
        if (fn) await fn.call(HOOK_CONTEXT, vite.mergeConfig({}, config), env);
      }
      for (const p of plugins) {
        const fn = handlerOf(p.configResolved);
        if (fn) await fn.call(HOOK_CONTEXT, this.resolved);
      }
      this.current = plugins;
    } catch (e) {
      this.refuseAll("the app's plugins could not be made again");
      throw e;
    }
  }

  /** Why this request cannot be a rebuild of the session ("" when it can). */
  refuse(changed, removed) {
    if (!this.usable) return this.why;
    const outDir = this.sink.outDir;
    const inOut = (rel) => {
      const r = relative(outDir, resolve(cwd, rel));
      return outDir && (r === "" || (!r.startsWith("..") && !r.startsWith(sep)));
    };
    const gone = removed.filter((rel) => !inOut(rel)); // the previous outDir goes before every build
    if (gone.length) return `${gone[0]} was removed`;
    if (!changed.length) return "no file changed";
    for (const rel of changed) {
      const name = rel.split("/").pop();
      if (name.startsWith(".env")) return `${rel} changed`;
      if (!this.watchFiles.has(resolve(cwd, rel))) return `${rel} is not in the last build's module graph`;
    }
    return "";
  }

  /** The bundle admitted for this request, once it ended (null: none was admitted in time). */
  async answerFor(id) {
    for (;;) {
      const bundle = this.bundles.find((b) => b.admitted === id);
      if (bundle && bundle.done) return bundle;
      if (!bundle && Date.now() > this.request.until + 500) return null;
      await this.sleep();
    }
  }

  ask(id, changed) {
    this.request = { id, wanted: changed.map((rel) => resolve(cwd, rel)), until: Date.now() + CHANGE_WAIT_MS };
    this.wake();
  }

  settle() {
    this.request = null;
    this.seen.clear();
    this.bundles = this.bundles.filter((b) => !b.done);
  }

  async close() {
    this.closing = true;
    this.wake();
    try {
      await this.watcher?.close();
    } catch {
      // a watcher that cannot close is dropped with its session
    }
  }
}

let session = null;
let sessionsOff = "";             // why this app is built fresh from now on

class NotForSessions extends Error {
  notForSessions = true;
}

async function startSession(id, started, why) {
  if (session) await session.close();
  session = new Session();
  try {
    await session.start({ id, wanted: [], until: Infinity });
  } catch (e) {
    if (!(e?.notForSessions || e?.cause?.notForSessions)) throw e;
    await session.close();
    session = null;
    sessionsOff = e.message;
    return freshBuild(id, started, sessionsOff);
  }
  const bundle = await waitFor(id);
  if (!bundle) throw new Error("the new watch session did not build");
  answer(id, bundle.sink, started, "session-start", why);
}

async function waitFor(id) {
  const bundle = await session.answerFor(id);
  session.settle();
  if (bundle && bundle.error) {
    await session.close();
    session = null;
    throw bundle.error;
  }
  return bundle;
}

async function sessionBuild(id, changed, removed, started) {
  if (sessionsOff) return freshBuild(id, started, sessionsOff);
  if (!session) return startSession(id, started, "no session yet");
  const why = session.refuse(changed, removed);
  if (why) return startSession(id, started, why);
  session.ask(id, changed);
  const bundle = await waitFor(id);
  if (!bundle) return startSession(id, started, "the watcher did not report every changed file in time");
  answer(id, bundle.sink, started, "rebuild", "");
}

async function build(msg) {
  const id = msg.id;
  const started = performance.now();
  send({ ev: "start", id });
  const changed = Array.isArray(msg.changed) ? msg.changed.filter((p) => typeof p === "string") : [];
  const removed = Array.isArray(msg.removed) ? msg.removed.filter((p) => typeof p === "string") : [];
  try {
    if (rebuildMode === "session") await sessionBuild(id, changed, removed, started);
    else await freshBuild(id, started, askedMode === "session" ? `Vite ${vite.version} cannot keep a watch session here` : "fresh builds asked for");
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
  if (msg.op === "build") queue = queue.then(() => build(msg));
  else if (msg.op === "exit") queue.then(async () => {
    await session?.close();
    process.exit(0);
  });
});
lines.on("close", () => queue.then(async () => {
  await session?.close();
  process.exit(0);
}));

send({ ev: "ready", vite: vite.version, node: process.version, pid: process.pid });
