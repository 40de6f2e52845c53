// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) loads /ui from a node of a real 3-node cluster, shows the three nodes up
// and the ring's shares as the SDK computes them, shows operations per second under load,
// and shows a killed node `down` within the detection bound; on a cluster with TLS required
// and authentication on, it asks for a token, says when one is refused, keeps the one taken
// in the tab's sessionStorage and reads every node with it. Skipped, with a message, on a
// machine without Chromium (`apt-get install -y chromium`; .ci/run installs it as root).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { Ring } from '../../sdk/ring.js';
import { TestCluster } from '../helpers/cluster.js';
import { skipWithoutOpenssl } from '../helpers/certs.js';
import { startSecureCluster } from '../helpers/secure-cluster.js';

const CHROMIUM = process.env.RINGKV_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Nodes detect a kill -9 in about 5-6 s; the page shows it at the next long-poll answer. */
const DETECTION_BOUND_MS = 12_000;

async function launch(t: Test, extraArgs: string[] = []): Promise<Browser> {
  // playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** Saves a screenshot for a failing check and names it in the test output. */
async function screenshotOnFailure(t: Test, page: Page, name: string): Promise<void> {
  const file = path.join(os.tmpdir(), `ringkv-dashboard-${name}-${process.pid}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
  t.comment(`screenshot: ${file}`);
}

const nodeCard = (id: string) => `.node[data-node="${id}"]`;

if (!fs.existsSync(CHROMIUM)) {
  t.plan(0, `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set RINGKV_CHROMIUM to run the dashboard test`);
} else {
  t.setTimeout(120_000);

  t.test('the dashboard shows the ring, load, and a killed node going down', async (t) => {
    const cluster = await TestCluster.start(t, { nodes: 3 });
    const browser = await launch(t);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    const n1 = cluster.node('n1');
    const res = await page.goto(`http://${n1.address}/ui`);
    t.equal(res?.status(), 200, 'GET /ui answers 200');
    t.equal(await page.title(), 'ringkv · cluster');

    // Three nodes up.
    await page.waitForFunction(`document.querySelectorAll('.node[data-state="up"]').length === 3`, undefined, { timeout: 10_000 });
    t.same(
      await page.$$eval('.node', (els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-state')}`)),
      ['n1:up', 'n2:up', 'n3:up'],
      'three node cards, all up',
    );
    t.equal(await page.textContent('#nodes-up'), '3 / 3');

    // The ring: the shares the page shows (the node's ring route) are the SDK's.
    await page.waitForSelector('#legend tr[data-node]', { timeout: 10_000 });
    const view = await cluster.view('n1');
    const sdkShares = new Ring(view.members.map((m) => ({ id: m.id, weight: m.weight })), { vnodesPerNode: view.settings.vnodesPerNode }).ownership();
    const pageShares = await page.$$eval('#legend tr[data-node]', (rows) => rows.map((r) => [r.getAttribute('data-node')!, Number(r.getAttribute('data-share'))] as const));
    t.equal(pageShares.length, 3, 'a legend row per node');
    for (const [id, share] of pageShares) t.ok(Math.abs(share - sdkShares.get(id)!) < 1e-9, `${id}: share ${(share * 100).toFixed(2)}% as the SDK computes it`);
    t.ok((await page.$$('#ring path.arc')).length > 3, 'the ring is drawn arc by arc');

    // Where a key lives: the page's preference list is the SDK's.
    const kv = await cluster.client<string>({ valueEncoding: 'utf8' });
    await page.fill('#locate', 'user:42');
    // The page asks the node where the key lives (GET /internal/v1/ring?key=).
    await page.waitForSelector('#locate-result[data-key="user:42"]', { timeout: 10_000 });
    const located = await page.$$eval('#locate-result .pill', (els) => els.map((e) => e.firstChild?.textContent?.trim()));
    t.same(located, kv.replicasOf('user:42'), 'the key locator names the replicas the SDK writes to');

    // Operations per second under load, from the deltas of every node's /metrics.
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) await kv.put(`dash-${i % 500}`, `v${i}`).catch(() => undefined);
    })();
    try {
      // (Page functions are given as strings: this file is compiled without the DOM types.)
      await page.waitForFunction(`[...document.querySelectorAll('.node .ops')].filter((e) => Number(e.dataset.value) > 0).length === 3`, undefined, { timeout: 10_000 });
      t.pass('every node shows operations per second > 0 under load');
      await page.waitForFunction(`[...document.querySelectorAll('.node .p99')].every((e) => /\\d/.test(e.textContent))`, undefined, { timeout: 5000 });
      t.pass('every node shows a p99');
      // A hot key: read far more than the others, it heads the hot-key panel.
      await kv.put('dash-hot', 'h', { consistency: 'all' });
      for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 100 }, () => kv.get('dash-hot', { consistency: 'all' })));
      await page.waitForFunction(`document.querySelector('#hotkeys tbody tr')?.dataset.key === 'dash-hot'`, undefined, { timeout: 10_000 });
      t.pass('the hot-key panel shows dash-hot first');
      t.equal(await page.$$eval('#hotkeys tbody tr:first-child .swatch', (els) => els.length), 3, 'served by its three replicas');
    } catch (err) {
      await screenshotOnFailure(t, page, 'load');
      throw err;
    } finally {
      stop = true;
      await load;
    }
    const repairs = await page.$$eval('.node .repair', (els) => els.map((e) => e.textContent ?? ''));
    t.ok(repairs.length === 3 && repairs.every((s) => s === 'never' || s === '–' || /ago/.test(s)), `last repair shown: ${repairs.join(', ')}`);

    // kill -9 n3: the page shows it down within the detection bound.
    const killedAt = Date.now();
    await cluster.kill('n3');
    try {
      await page.waitForSelector(`${nodeCard('n3')}[data-state="down"]`, { timeout: DETECTION_BOUND_MS });
    } catch (err) {
      await screenshotOnFailure(t, page, 'down');
      throw err;
    }
    const shownAfterMs = Date.now() - killedAt;
    t.ok(shownAfterMs <= DETECTION_BOUND_MS, `n3 shown down ${shownAfterMs} ms after kill -9 (bound ${DETECTION_BOUND_MS} ms)`);
    t.equal(await page.getAttribute(`${nodeCard('n1')}`, 'data-state'), 'up', 'n1 still up');
    t.equal(await page.getAttribute(`${nodeCard('n2')}`, 'data-state'), 'up', 'n2 still up');
    t.equal(await page.textContent('#nodes-up'), '2 / 3');
    t.ok((await page.$$('#ring path.arc.state-down[data-node="n3"]')).length > 0, "n3's arcs are drawn as down");
    t.match(await page.textContent('#events'), /n3\s*suspect → down|n3\s*up → down/, 'the event list records the transition');
    t.same(pageErrors, [], 'no script errors on the page');
    if (process.env.RINGKV_SCREENSHOT) await page.screenshot({ path: process.env.RINGKV_SCREENSHOT, fullPage: true });
  });

  t.test('with authentication on, the dashboard asks for a token and reads every node with it', { skip: skipWithoutOpenssl() }, async (t) => {
    const s = await startSecureCluster(t, { nodes: 3 });
    const watcher = await s.user('watcher', []);
    // The test CA is not in the browser's store: certificate errors are ignored (test only).
    const browser = await launch(t, ['--ignore-certificate-errors']);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, ignoreHTTPSErrors: true });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const n1 = s.c.node('n1');
    try {
      const res = await page.goto(`https://${n1.address}/ui`);
      t.equal(res?.status(), 200, 'the page itself needs no token');
      await page.waitForSelector('#auth:not([hidden])', { timeout: 10_000 });
      t.pass('the token prompt is shown');
      t.equal(await page.$$eval('.node', (els) => els.length), 0, 'and no node is shown without a token');
      await page.fill('#auth-token', 'rkv_made-up-token-00000000000000000000000000000');
      await page.click('#auth button[type=submit]');
      await page.waitForSelector('#auth-why.refused', { timeout: 10_000 });
      t.match(await page.textContent('#auth-why'), /refused/, 'a made-up token is refused, and the page says so');
      await page.fill('#auth-token', watcher);
      await page.click('#auth button[type=submit]');
      await page.waitForFunction(`document.querySelectorAll('.node[data-state="up"]').length === 3`, undefined, { timeout: 15_000 });
      t.pass("with a user's token (no roles: a watcher), three nodes up");
      t.equal(await page.evaluate('sessionStorage.getItem("ringkv.token")'), watcher, "the token is kept in the tab's sessionStorage");
      // Every node's status and metrics (cross-origin, with the token) are read.
      await page.waitForFunction(
        `[...globalThis.ringkvDashboard.state.nodes.values()].filter((n) => n.statusAtMs > 0 && !n.error).length === 3`,
        undefined,
        { timeout: 15_000 },
      );
      t.pass('the status and metrics of every node are read with the token');
      await page.waitForFunction(`document.querySelectorAll('#ring path.arc').length > 3`, undefined, { timeout: 15_000 });
      t.pass("the ring is read with the token and drawn");
      await page.reload();
      await page.waitForFunction(`document.querySelectorAll('.node[data-state="up"]').length === 3`, undefined, { timeout: 15_000 });
      t.equal(await page.$eval('#auth', (e) => (e as unknown as { hidden: boolean }).hidden), true, 'after a reload the kept token is used: no prompt');
      await page.click('#auth-forget');
      await page.waitForSelector('#auth:not([hidden])', { timeout: 10_000 });
      t.equal(await page.evaluate('sessionStorage.getItem("ringkv.token")'), null, '"forget token" forgets it and asks again');
    } catch (err) {
      await screenshotOnFailure(t, page, 'auth');
      throw err;
    }
    t.same(pageErrors, [], 'no script errors on the page');
  });
}
