// Runs every program in examples/ the way the README says to, and checks that each exits 0
// (each example asserts what it demonstrates, so a zero exit means the demonstration held).
// The client examples and http.sh run against a 3-node TestCluster through RINGKV_SEEDS;
// failover.js starts (and kills a node of) its own cluster. Needs `npm run build` (pretest).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';

t.setTimeout(120_000);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const built = (name: string) => path.join(root, 'dist/examples', name);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

/** Runs a command to its end (its process group SIGKILLed after `timeoutMs`), collecting stdout and stderr. */
function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout kills what it started too (failover's servers).
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
}

const clientExamples: { file: string; shows: RegExp }[] = [
  { file: 'basic.js', shows: /KEY_TOO_LARGE/ },
  { file: 'session-store.js', shows: /bob's session has expired/ },
  { file: 'shopping-cart.js', shows: /resolver merges them into \["bread","eggs","milk"\]/ },
  { file: 'data-types.js', shows: /incremented likes:post-[0-9a-f]+ 120 times concurrently: the counter reads 120/ },
  { file: 'multi-key.js', shows: /putMany: 100 keys written in \d+ batch requests; the long key failed alone with KEY_TOO_LARGE/ },
  { file: 'retries.js', shows: /without retries: QUORUM_NOT_MET\nwith retries: "still here" after 2 retries/ },
  { file: 'metrics.js', shows: /db\.client\.operation\.duration\{db\.operation\.name=put,ringkv\.consistency=strong\}: 20 calls/ },
  { file: 'listing.js', shows: /59 keys in all, none twice, the deleted one left out; 34 values read with entries\(\)/ },
  { file: 'typed-json.js', shows: /Ada speaks en and fr, 2 visits/ },
];

t.test('examples against a 3-node cluster', async (t) => {
  const cluster = await TestCluster.start(t, { nodes: 3 });
  const env = { RINGKV_SEEDS: cluster.addresses.join(',') };

  for (const { file, shows } of clientExamples) {
    t.test(file, async (t) => {
      t.ok(fs.existsSync(built(file)), `${file} is built`);
      const r = await run(process.execPath, [built(file)], env, 30_000);
      t.equal(r.code, 0, `node dist/examples/${file} exits 0 (${r.ms} ms)`, { output: r.output });
      t.match(r.output, shows, 'its output shows the point of the example');
    });
  }

  t.test('http.sh', { skip: spawnSync('curl', ['--version']).status === 0 ? false : 'curl is not installed' }, async (t) => {
    const r = await run('bash', [path.join(root, 'examples/http.sh')], env, 30_000);
    t.equal(r.code, 0, `bash examples/http.sh exits 0 (${r.ms} ms)`, { output: r.output });
    t.match(r.output, /"code":"NOT_FOUND"/);
    t.match(r.output, /"code":"KEY_TOO_LARGE"/);
  });
});

t.test('failover.js: kill -9 a node of its own cluster mid-load', async (t) => {
  const r = await run(process.execPath, [built('failover.js')], {}, 60_000);
  t.equal(r.code, 0, `node dist/examples/failover.js exits 0 (${r.ms} ms)`, { output: r.output });
  t.match(r.output, /kill -9 n3/);
  t.match(r.output, /event nodeDown n3/, "the client's nodeDown event");
  t.match(r.output, /event nodeUp n3/, "the client's nodeUp event");
  t.match(r.output, /writes stopped: [1-9]\d* acknowledged, 0 failed/);
  t.match(r.output, /nothing failed, nothing was lost/);
});
