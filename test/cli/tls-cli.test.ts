// The ringkv command with TLS: `ringkv certs` makes a CA, node and client certificates
// (and keeps what exists), `ringkv cluster up --tls` runs a local cluster that requires TLS,
// and the client commands reach it with --tls-* flags or RINGKV_TLS_* — while a command
// without them is told, in one line, that the node requires TLS.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import t from 'tap';
import { CLI, freePort } from '../helpers/cluster.js';
import { skipWithoutOpenssl } from '../helpers/certs.js';
import type { CliRun } from '../helpers/run-cli.js';
import { runRingkv } from '../helpers/run-cli.js';

t.setTimeout(120_000);

const skip = skipWithoutOpenssl();

type Run = CliRun;

function ringkv(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runRingkv(args, { env });
}

t.test('ringkv certs', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-certs-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = await ringkv(['certs', '--dir', dir, '--nodes', 'a,b', '--clients', 'web', '--hosts', 'db.example,10.1.2.3', '--days', '30']);
  t.equal(r.code, 0, r.stderr);
  const files = fs.readdirSync(dir).sort();
  t.same(files, ['ca.crt', 'ca.key', 'client-web.crt', 'client-web.key', 'node-a.crt', 'node-a.key', 'node-b.crt', 'node-b.key']);
  t.equal(fs.statSync(path.join(dir, 'node-a.key')).mode & 0o777, 0o600, 'keys are readable by their owner only');
  const node = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'node-a.crt')));
  t.equal(node.subjectAltName, 'URI:ringkv://node/a, DNS:db.example, IP Address:10.1.2.3', 'a node certificate names the node, then the hosts');
  t.same(node.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
  t.equal(node.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'EC P-256');
  const days = (Date.parse(node.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 29 && days <= 30, `valid for --days (${days.toFixed(2)})`);
  const client = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'client-web.crt')));
  t.equal(client.subjectAltName, 'URI:ringkv://client/web');
  t.same(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'a client certificate is for clients only');
  const ca = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'ca.crt')));
  t.ok(node.verify(ca.publicKey) && client.verify(ca.publicKey), 'both signed by the CA');
  t.ok(ca.ca, 'the CA is a CA');
  // A second run keeps every file and adds what is new, signed by the same CA.
  const before = fs.readFileSync(path.join(dir, 'node-a.crt'));
  const again = await ringkv(['certs', '--dir', dir, '--nodes', 'a,c', '--clients', 'web']);
  t.equal(again.code, 0, again.stderr);
  t.same(fs.readFileSync(path.join(dir, 'node-a.crt')), before, 'an existing certificate is kept');
  t.ok(new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'node-c.crt'))).verify(ca.publicKey), 'a new node is signed by the existing CA');
  const bad = await ringkv(['certs', '--dir', dir, '--nodes', 'bad/id']);
  t.equal(bad.code, 2, 'a bad id is a usage error');
});

t.test('ringkv cluster up --tls, and the client commands over TLS', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-up-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Three consecutive free ports are not guaranteed; a failed start is retried on others.
  let up: ChildProcess | undefined;
  let base = 0;
  const lines: string[] = [];
  for (let attempt = 0; attempt < 3 && !up; attempt++) {
    base = await freePort();
    const child = spawn(process.execPath, [CLI, 'cluster', 'up', '--tls', '--nodes', '3', '--base-port', String(base), '--data', dir, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      readline.createInterface({ input: child.stdout! }).on('line', (l) => {
        lines.push(l);
        if (/nodes up at/.test(l)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.stderr!.on('data', (d: Buffer) => lines.push(d.toString()));
      child.once('exit', () => resolve(false));
    });
    if (ready) up = child;
    else child.kill('SIGKILL');
  }
  t.ok(up, `the cluster started:\n${lines.slice(-10).join('\n')}`);
  if (!up) return;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (up!.exitCode !== null) return resolve();
        up!.once('exit', () => resolve());
        up!.kill('SIGINT');
        setTimeout(() => up!.kill('SIGKILL'), 20_000).unref();
      }),
  );
  const certDir = path.join(dir, 'tls');
  t.ok(fs.existsSync(path.join(certDir, 'node-n3.crt')) && fs.existsSync(path.join(certDir, 'client-dev.crt')), 'certificates were made');
  t.match(lines.join('\n'), /curl --cacert \S+ca\.crt .*https:\/\/127\.0\.0\.1:\d+\/api\/v1\/kv\/greeting/, 'it says how to reach it');
  const seeds = `127.0.0.1:${base}`;
  const env = {
    RINGKV_TLS_CA: path.join(certDir, 'ca.crt'),
    RINGKV_TLS_CERT: path.join(certDir, 'client-dev.crt'),
    RINGKV_TLS_KEY: path.join(certDir, 'client-dev.key'),
  };

  // Wait until every node sees the others up (the status of each is reachable over TLS).
  const deadline = Date.now() + 30_000;
  let status: Run | undefined;
  while (Date.now() < deadline) {
    status = await ringkv(['status', '--json', '--seeds', seeds], env);
    if (status.code === 0) {
      const nodes = (JSON.parse(status.stdout) as { nodes: { state: string; tls: string; reachable: boolean }[] }).nodes;
      if (nodes.length === 3 && nodes.every((n) => n.state === 'up' && n.tls === 'required' && n.reachable)) break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(status?.code, 0, `status over TLS (RINGKV_TLS_*): ${status?.stderr}`);
  const nodes = (JSON.parse(status!.stdout) as { nodes: { id: string; state: string; tls: string }[] }).nodes;
  t.same(nodes.map((n) => `${n.id}:${n.state}:${n.tls}`), ['n1:up:required', 'n2:up:required', 'n3:up:required']);

  const flags = ['--tls-ca', env.RINGKV_TLS_CA, '--tls-cert', env.RINGKV_TLS_CERT, '--tls-key', env.RINGKV_TLS_KEY, '--seeds', seeds];
  const put = await ringkv(['put', 'tls-cli', 'over tls', ...flags]);
  t.equal(put.code, 0, `put with --tls-* flags: ${put.stderr}`);
  const get = await ringkv(['get', 'tls-cli', '--consistency', 'all', ...flags]);
  t.equal(get.stdout, 'over tls', 'get with --tls-* flags, at all');

  const plain = await ringkv(['get', 'tls-cli', '--seeds', seeds]);
  t.equal(plain.code, 3, 'a command without TLS is a cluster error');
  t.match(plain.stderr, /^ringkv: TLS_REQUIRED: this node accepts TLS only/, `in one line: ${plain.stderr.trim()}`);
  const noCert = await ringkv(['status', '--seeds', seeds, '--tls-ca', env.RINGKV_TLS_CA]);
  t.match(noCert.stderr, /UNAUTHENTICATED: .*needs a client or node certificate/, 'without a client certificate the members are refused');
  const admin = await ringkv(['repair', '--check', '--seeds', seeds], env);
  t.not(admin.code, 0, 'repair --check takes node certificates (merkle is for nodes)');
  const asNode = await ringkv(['repair', '--check', '--seeds', seeds], { ...env, RINGKV_TLS_CERT: path.join(certDir, 'node-n1.crt'), RINGKV_TLS_KEY: path.join(certDir, 'node-n1.key') });
  t.equal(asNode.code, 0, `with a node's certificate it runs: ${asNode.stderr}${asNode.stdout.slice(-200)}`);
});
