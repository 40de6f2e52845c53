// Server configuration: defaults, the layering of file < environment < flags, and the
// validation that names the bad setting.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { configFromEnv, configFromFile, engineSettings, resolveServerConfig, serverDefaults } from '../../storage-server/config.js';

t.test('defaults', async (t) => {
  const c = resolveServerConfig({ id: 'n1' });
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 7001);
  t.equal(c.dataDir, path.join('data', 'n1'));
  t.equal(c.advertise, '127.0.0.1:7001');
  t.equal(c.vnodesPerNode, 128);
  t.equal(c.replicationFactor, 3);
  t.equal(c.sync, 'batch');
  t.same(c.seeds, []);
  t.equal(c.join, false);
  t.equal(c.repairIntervalMs, serverDefaults.repairIntervalMs);
  t.equal(c.walRecycleSegments, 0, 'WAL segments are not recycled unless asked');
  t.equal(engineSettings(resolveServerConfig({ id: 'n1', walRecycleSegments: 4 })).walRecycleSegments, 4, 'the engine gets walRecycleSegments');
});

t.test('file < environment < flags', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'node.json');
  fs.writeFileSync(file, JSON.stringify({ id: 'from-file', port: 7100, seeds: ['10.0.0.1:7001'], weight: 0.5 }));
  const env = configFromEnv({ RINGKV_PORT: '7200', RINGKV_SEEDS: '10.0.0.2:7001,10.0.0.3:7001', RINGKV_DATA_DIR: '/var/lib/ringkv', RINGKV_JOIN: 'true' });
  const c = resolveServerConfig(configFromFile(file), env, { port: '7300', id: undefined });
  t.equal(c.id, 'from-file');
  t.equal(c.port, 7300, 'flags win');
  t.same(c.seeds, ['10.0.0.2:7001', '10.0.0.3:7001'], 'environment beats the file');
  t.equal(c.dataDir, '/var/lib/ringkv');
  t.equal(c.weight, 0.5);
  t.equal(c.join, true);
  t.equal(c.advertise, '127.0.0.1:7300');
});

t.test('bad settings are refused by name', async (t) => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /server id/],
    [{ id: 'has space' }, /server id/],
    [{ id: 'n1', port: 70000 }, /port/],
    [{ id: 'n1', seeds: 'nohostport' }, /seed/],
    [{ id: 'n1', sync: 'sometimes' }, /sync/],
    [{ id: 'n1', weight: 0 }, /weight/],
    [{ id: 'n1', vnodesPerNode: 1.5 }, /vnodesPerNode/],
    [{ id: 'n1', logLevel: 'loud' }, /logLevel/],
    [{ id: 'n1', colour: 'blue' }, /unknown server setting "colour"/],
    [{ id: 'n1', join: true }, /join needs seeds/],
    [{ id: 'n1', tombstoneGraceMs: 60_000, repairIntervalMs: 60_000 }, /tombstoneGraceMs .* must exceed twice repairIntervalMs/],
    // 0 would make every hinted write fail (or, stored with no time to live, vanish).
    [{ id: 'n1', maxHintAgeMs: 0 }, /maxHintAgeMs/],
    [{ id: 'n1', maxHintAgeMs: 1e300 }, /maxHintAgeMs/],
    // Checked by the engine's own resolver.
    [{ id: 'n1', walRecycleSegments: 65 }, /walRecycleSegments/],
  ];
  for (const [raw, msg] of bad) t.throws(() => resolveServerConfig(raw), { code: 'INVALID_ARGUMENT', message: msg }, JSON.stringify(raw));
  // A short grace is fine when repair rounds are off or frequent enough.
  t.doesNotThrow(() => resolveServerConfig({ id: 'n1', tombstoneGraceMs: 60_000, repairIntervalMs: 0 }));
  t.doesNotThrow(() => resolveServerConfig({ id: 'n1', tombstoneGraceMs: 60_000, repairIntervalMs: 20_000 }));
});

t.test('a config file that is not a JSON object is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringkv-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bad.json');
  fs.writeFileSync(file, '[1, 2');
  t.throws(() => configFromFile(file), { code: 'INVALID_ARGUMENT', message: /not a JSON object/ });
  t.throws(() => configFromFile(path.join(dir, 'missing.json')), { code: 'INVALID_ARGUMENT', message: /cannot read/ });
});

t.test('data centers: --dc, --rack, --advertise-remote and replication per data center', async (t) => {
  const one = resolveServerConfig({ id: 'n1' });
  t.equal(one.dc, 'default');
  t.equal(one.rack, '');
  t.same(one.replication, { default: 3 }, 'a plain number: one data center, this node\'s');
  const east = resolveServerConfig({ id: 'n1', dc: 'east', replicationFactor: 5 });
  t.same(east.replication, { east: 5 });
  const env = configFromEnv({ RINGKV_DC: 'east', RINGKV_RACK: 'r1', RINGKV_REPLICATION_FACTOR: 'east:3,west:2', RINGKV_ADVERTISE_REMOTE: 'gw.example:9001' });
  const c = resolveServerConfig({ id: 'n1' }, env);
  t.same([c.dc, c.rack, c.advertiseRemote], ['east', 'r1', 'gw.example:9001']);
  t.same(c.replication, { east: 3, west: 2 });
  t.equal(c.replicationFactor, 5, 'replicationFactor is the sum');
  const file = resolveServerConfig({ id: 'n1', dc: 'west', replicationFactor: { east: 3, west: 3 } });
  t.same(file.replication, { east: 3, west: 3 }, 'a map in the config file');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ dc: 'east coast' }, /dc must be/],
    [{ rack: 'x'.repeat(65) }, /rack must be/],
    [{ dc: 'east', replicationFactor: 'west:3' }, /no replicas for this node's data center east/],
    [{ replicationFactor: 'east:3,west:3' }, /data center default/],
    [{ dc: 'east', replicationFactor: 'east:3,east:2' }, /twice/],
    [{ dc: 'east', replicationFactor: 'east:0' }, /1\.\.64/],
    [{ dc: 'east', replicationFactor: 'east=3' }, /not a number or dc:n/],
    [{ advertiseRemote: 'nope' }, /advertiseRemote/],
    [{ replQueueMaxBytes: 10 }, /replQueueMaxBytes/],
  ];
  for (const [raw, re] of bad) t.throws(() => resolveServerConfig({ id: 'n1', ...raw }), re, JSON.stringify(raw));
});

t.test('with several data centers a delete outlives the full sync interval plus the lag bound', async (t) => {
  const base = { id: 'n1', dc: 'east', replicationFactor: 'east:3,west:3' };
  t.throws(
    () => resolveServerConfig({ ...base, tombstoneGraceMs: 10 * 3600_000, fullSyncIntervalMs: 6 * 3600_000, replQueueMaxAgeMs: 6 * 3600_000 }),
    /tombstoneGraceMs .* must exceed fullSyncIntervalMs .* plus replQueueMaxAgeMs/,
  );
  t.ok(resolveServerConfig({ ...base, tombstoneGraceMs: 13 * 3600_000, fullSyncIntervalMs: 6 * 3600_000, replQueueMaxAgeMs: 6 * 3600_000 }), 'a longer grace is fine');
  t.ok(resolveServerConfig({ id: 'n1', tombstoneGraceMs: 11 * 60_000, replQueueMaxAgeMs: 24 * 3600_000 }), 'one data center: the rule does not apply');
  const d = resolveServerConfig(base);
  t.ok(d.tombstoneGraceMs > d.fullSyncIntervalMs + d.replQueueMaxAgeMs, 'the defaults satisfy it');
});
