// Serves a local deploy bundle made by cached (worker.mjs, wrangler.json, assets/, r2/, .dev.vars)
// with Miniflare on 127.0.0.1, then prints one JSON line {"url": ...} once it is ready.
//   node serve.mjs --bundle DIR [--host 127.0.0.1] [--port 0] [--parent PID] [--follow 1]
// R2 buckets are in memory, seeded from the bundle's r2/ directory (object key = path below r2/).
// Another bundle is served without a restart of node or Miniflare (only workerd takes the new config,
// on the same port): on a line {"reload": DIR} on stdin, and, with --follow, whenever DIR (a symlink such
// as <app>/current, moved by a deploy) points elsewhere. Each reload prints {"reloaded": url, "bundle": real
// dir, "ms": ...} once the new bundle is served, or {"reload_error": message, "bundle": ...}.
// It ends, and takes workerd along, on SIGTERM, SIGINT or SIGHUP and, with --parent, when process PID
// is no longer its parent or its stdin (a pipe from that process) closes: the parent died, even by SIGKILL.
import { Miniflare } from "miniflare";
import { existsSync, readFileSync, readdirSync, realpathSync, watch } from "node:fs";
import path from "node:path";

function parseArgs(argv) {
  const args = { host: "127.0.0.1", port: "0" };
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1];
  if (!args.bundle) throw new Error("usage: serve.mjs --bundle DIR [--host H] [--port N]");
  return args;
}

function devVars(bundle) {
  const file = path.join(bundle, ".dev.vars");
  if (!existsSync(file)) return {};
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) vars[line.slice(0, eq)] = JSON.parse(line.slice(eq + 1));
  }
  return vars;
}

function* walk(dir, prefix = "") {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walk(path.join(dir, entry.name), rel);
    else if (entry.isFile()) yield [rel, path.join(dir, entry.name)];
  }
}

// The runtimes this process started (workerd), killed on the way out whatever way that is.
function killChildren() {
  let tasks = [];
  try { tasks = readdirSync("/proc/self/task"); } catch { return; }
  for (const task of tasks) {
    let pids = "";
    try { pids = readFileSync(`/proc/self/task/${task}/children`, "utf8"); } catch { continue; }
    for (const pid of pids.split(" ").filter(Boolean)) {
      try { process.kill(Number(pid), "SIGKILL"); } catch { /* already gone */ }
    }
  }
}

// Exiting runs Miniflare's exit hook, which kills workerd and removes Miniflare's temporary directory, synchronously
// (mf.dispose() would leave the directory to an asynchronous removal that an exit cuts short).
const stop = () => process.exit(0);
process.on("exit", killChildren);
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, stop);

const args = parseArgs(process.argv.slice(2));
if (args.parent) {
  const parent = Number(args.parent);
  if (process.ppid !== parent) stop();
  setInterval(() => { if (process.ppid !== parent) stop(); }, 250);
  for (const event of ["end", "close", "error"]) process.stdin.on(event, stop);
  process.stdin.resume();
}
function optionsFor(bundle) {
  const config = JSON.parse(readFileSync(path.join(bundle, "wrangler.json"), "utf8"));
  const r2 = config.r2_buckets ?? [];
  return {
    r2,
    options: {
      modules: true,
      scriptPath: path.join(bundle, config.main),
      modulesRoot: bundle,
      compatibilityDate: config.compatibility_date,
      compatibilityFlags: config.compatibility_flags ?? [],
      bindings: { ...(config.vars ?? {}), ...devVars(bundle) },
      r2Buckets: Object.fromEntries(r2.map((b) => [b.binding, b.bucket_name])),
      host: args.host,
      port: Number(args.port),
      assets: {
        directory: path.join(bundle, config.assets.directory),
        binding: config.assets.binding,
        routerConfig: { has_user_worker: true },
        assetConfig: { not_found_handling: config.assets.not_found_handling },
      },
    },
  };
}

async function seed(mf, bundle, r2) {
  const seedDir = path.join(bundle, "r2");
  if (!r2.length || !existsSync(seedDir)) return;
  for (const b of r2) {
    const bucket = await mf.getR2Bucket(b.binding);
    for (const [key, file] of walk(seedDir)) {
      const data = readFileSync(file);  // a Buffer: Miniflare's proxy only passes plain typed arrays
      const there = await bucket.head(key);  // keys name their content: one already there is not sent again
      if (there && there.size === data.byteLength) continue;
      await bucket.put(key, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
}

const requested = path.resolve(args.bundle);
let served = realpathSync(requested);
const first = optionsFor(served);
const mf = new Miniflare(first.options);
let url = await mf.ready;
await seed(mf, served, first.r2);
console.log(JSON.stringify({ url: url.href }));

// Reloads run one at a time; a request that comes while one runs is served after it (the newest wins).
let running = null;
let wanted = null;
function reload(dir) {
  wanted = dir;
  if (running) return running;
  running = (async () => {
    while (wanted !== null) {
      const target = wanted;
      wanted = null;
      const started = performance.now();
      let real = target;
      try {
        real = realpathSync(target);
        if (real === served && target === requested) continue;  // --follow: the link did not move
        const next = optionsFor(real);
        await mf.setOptions(next.options);
        url = await mf.ready;
        await seed(mf, real, next.r2);
        served = real;
        console.log(JSON.stringify({ reloaded: url.href, bundle: real, ms: Math.round(performance.now() - started) }));
      } catch (e) {
        console.log(JSON.stringify({ reload_error: String(e?.message ?? e).slice(0, 2000), bundle: real }));
      }
    }
  })().finally(() => { running = null; });
  return running;
}

if (args.follow) {
  // The deploy moves the link by a rename in its directory: watched there, and polled in case an event is missed.
  const check = () => {
    let real;
    try { real = realpathSync(requested); } catch { return; }
    if (real !== served) reload(requested);
  };
  try { watch(path.dirname(requested), { persistent: false }, check); } catch { /* polling alone */ }
  setInterval(check, 500).unref();
}

let pending = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (!line) continue;
    try {
      const message = JSON.parse(line);
      if (message && typeof message.reload === "string") reload(path.resolve(message.reload));
    } catch { /* not a command */ }
  }
});
