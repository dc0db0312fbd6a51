// Serves a local deploy bundle made by cached (worker.mjs, wrangler.json, assets/, r2/, .dev.vars)
// with Miniflare on 127.0.0.1, then prints one JSON line {"url": ...} once it is ready.
//   node serve.mjs --bundle DIR [--host 127.0.0.1] [--port 0] [--parent PID]
// R2 buckets are in memory, seeded from the bundle's r2/ directory (object key = path below r2/).
// It ends, and takes workerd along, on SIGTERM, SIGINT or SIGHUP and, with --parent, when process PID
// is no longer its parent or its stdin (a pipe from that process) closes: the parent died, even by SIGKILL.
import { Miniflare } from "miniflare";
import { existsSync, readFileSync, readdirSync } from "node:fs";
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
const bundle = path.resolve(args.bundle);
const config = JSON.parse(readFileSync(path.join(bundle, "wrangler.json"), "utf8"));
const r2 = config.r2_buckets ?? [];
const mf = new Miniflare({
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
});
const url = await mf.ready;
const seedDir = path.join(bundle, "r2");
if (r2.length && existsSync(seedDir)) {
  for (const b of r2) {
    const bucket = await mf.getR2Bucket(b.binding);
    for (const [key, file] of walk(seedDir)) {
      const data = readFileSync(file);  // a Buffer: Miniflare's proxy only passes plain typed arrays
      await bucket.put(key, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
}
console.log(JSON.stringify({ url: url.href }));
