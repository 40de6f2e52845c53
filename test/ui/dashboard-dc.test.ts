// The dashboard of a cluster of two data centers in a real browser (headless Chromium, as
// dashboard.test.ts): each node's card names its data center and rack, the key locator gives
// the replicas per data center as the SDK places them, and the replication panel has a row
// per node and destination whose queued count grows while the link between the data centers
// is cut and falls back to 0 after it heals. Real processes on loopback; the link is the
// user-space proxy of the multi-DC tests. Skipped, with a message, without Chromium.

import fs from 'node:fs';
import t from 'tap';
import type { Test } from 'tap';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { DcCluster } from '../helpers/dc-cluster.js';

const CHROMIUM = process.env.RINGKV_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function launch(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

if (!fs.existsSync(CHROMIUM)) {
  t.plan(0, `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set RINGKV_CHROMIUM to run the dashboard test`);
} else {
  t.setTimeout(180_000);

  t.test('the dashboard shows data centers, racks and the replication between them', async (t) => {
    const dc = await DcCluster.start(t, {
      dcs: [
        { name: 'east', nodes: 2, racks: ['r1', 'r2'] },
        { name: 'west', nodes: 2, racks: ['r1', 'r2'] },
      ],
      env: { RINGKV_FULL_SYNC_INTERVAL_MS: '0', RINGKV_REPL_RETRY_MAX_MS: '300' },
    });
    const east = await dc.client<string>('east', { valueEncoding: 'utf8' });
    const browser = await launch(t);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const n1 = dc.cluster.node('n1');
    t.equal((await page.goto(`http://${n1.address}/ui`))?.status(), 200, 'GET /ui answers 200');
    await page.waitForFunction(`document.querySelectorAll('.node[data-state="up"]').length === 4`, undefined, { timeout: 20_000 });

    // Each card: its data center and rack.
    const topology = await page.$$eval('.node', (els) => els.map((e) => `${e.getAttribute('data-node')}=${e.querySelector('[data-role="topology"]')?.textContent?.trim()}`));
    t.same(topology.sort(), ['n1=east / r1', 'n2=east / r2', 'n3=west / r1', 'n4=west / r2'], 'each node card shows its data center and rack');

    // The key locator: the replicas per data center, as the SDK writes them.
    await page.fill('#locate', 'user:42');
    // The page asks the node where the key lives (GET /internal/v1/ring?key=).
    await page.waitForSelector('#locate-result[data-key="user:42"]', { timeout: 10_000 });
    const located = await page.$$eval('#locate-result .pill', (els) => els.map((e) => e.firstChild?.textContent?.trim()));
    t.same(located, east.replicasOf('user:42'), 'the key locator names the replicas of each data center the SDK writes to');

    // The replication panel: a row per node and destination, from every node's status
    // (those of west reached at their remote address, through the link).
    const rows = `#repl-card:not([hidden]) #repl tr[data-node]`;
    await page.waitForFunction(`document.querySelectorAll('${rows}').length === 4`, undefined, { timeout: 20_000 });
    const dests = await page.$$eval('#repl tr[data-node]', (els) => els.map((e) => `${e.getAttribute('data-node')}->${e.getAttribute('data-dest')}`));
    t.same(dests.sort(), ['n1->west', 'n2->west', 'n3->east', 'n4->east'], 'a row per node and destination data center');

    // Cut the link: east's writes queue for west, and the panel shows them queued.
    dc.link.cut();
    for (let i = 0; i < 40; i++) await east.put(`dash-dc:${i}`, `v${i}`, { consistency: 'localQuorum' });
    const queued = `[...document.querySelectorAll('#repl tr[data-dest="west"] td[data-role="pending"]')].reduce((a, e) => a + Number(e.textContent.replace(/[^0-9]/g, '')), 0)`;
    await page.waitForFunction(`${queued} >= 40`, undefined, { timeout: 15_000 });
    t.pass('with the link cut, the panel shows the writes queued for west');
    dc.link.heal();
    await page.waitForFunction(`${queued} === 0`, undefined, { timeout: 30_000 });
    t.pass('after healing, the queues drain to 0 on the panel');
    t.same(pageErrors, [], 'no script errors on the page');
  });
}
