// The cluster dashboard: no backend of its own, it reads the endpoints every node serves.
//   - the member list, long-polled from the node that served the page (another member
//     when that one stops answering): GET /internal/v1/members?since=<epoch>&waitMs=...
//   - every member's status and Prometheus metrics, once a second (CORS allows it):
//     GET /internal/v1/status, GET /metrics
//   - the ring, from the node the member list came from, whenever the list's ring stamp
//     changes: GET /internal/v1/ring (arcs, vnodes and shares computed by sdk/ring.ts on the
//     node: the page does not re-implement the ring), and a typed key's replicas:
//     GET /internal/v1/ring?key=...
// From those it draws the ring, each node's state, operations
// per second and p99 (deltas between polls: metrics.js), pending hints, the last repair, the
// cluster's hot keys (every node's status lists its own; merged here by key), and with
// several data centers each node's data center and rack and the replication between them
// (queued and dropped writes, lag, last full sync). Members of another data center than the
// page's node are reached at their remote address.
// With authentication on (a node answers 401), it asks for a user's token, keeps it in this
// tab's sessionStorage and sends it as `Authorization: Bearer` with every request (the
// nodes allow that header cross-origin for these GETs).
// Single-threaded like any page: each node has at most one poll in flight.

import { bucketDelta, quantileBetween, ratePerSec, summarize } from './metrics.js';

const POLL_INTERVAL_MS = 1000;
const FETCH_TIMEOUT_MS = 2000;
const DOWN_POLL_INTERVAL_MS = 5000;
const LONG_POLL_WAIT_MS = 10_000;
/** Rates are taken over the last poll; p99 over this window, for steadier numbers. */
const P99_WINDOW_MS = 10_000;
const HISTORY_POINTS = 60;
const MAX_EVENTS = 50;

/** The ring's route (sdk/wire/protocol.ts Routes.ring, protocol 6). */
const RING_PATH = '/internal/v1/ring';
/** Wait after the last keystroke before asking where the typed key lives. */
const LOCATE_DEBOUNCE_MS = 120;

const NODE_COLORS = ['#3b82f6', '#f59e0b', '#14b8a6', '#8b5cf6', '#ec4899', '#84cc16', '#06b6d4', '#f97316', '#6366f1', '#10b981'];
const STATE_LABELS = { up: 'up', suspect: 'suspect', down: 'down', joining: 'joining', leaving: 'leaving', left: 'left' };

// -----------------------------------------------------------------------------------------
// State

const params = new URLSearchParams(location.search);
/** The node the page talks to first: the one that served it, or ?node=host:port. */
const originNode = params.get('node') || location.host;

const state = {
  /** The last members view: {self, settings: {vnodesPerNode, replicationFactor}, members, epoch}. */
  view: undefined,
  viewFrom: undefined,
  viewAtMs: 0,
  /** True while the member list is being received. */
  connected: false,
  /** Per node id: {status, statusAtMs, triedAtMs, error, summaries: [], opsHistory: [], inFlight}. */
  nodes: new Map(),
  events: [],
  /** The last ring answer (GET /internal/v1/ring), the address it came from, and why the last fetch failed. */
  ring: undefined,
  ringFrom: undefined,
  ringError: undefined,
  ringInFlight: false,
  locatedKey: undefined,
  /** The ring's answer for the located key: {key, token, replicas: [{dc, nodes}]}. */
  located: undefined,
};

function nodeState(id) {
  let n = state.nodes.get(id);
  if (!n) {
    n = { status: undefined, statusAtMs: 0, triedAtMs: 0, error: undefined, summaries: [], opsHistory: [], inFlight: false };
    state.nodes.set(id, n);
  }
  return n;
}

// -----------------------------------------------------------------------------------------
// The token (authentication on)

const TOKEN_KEY = 'ringkv.token';
const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || undefined,
  /** True while the page waits for a token (none given, or the one given was refused). */
  needed: false,
  /** Resolved when the user gives a token. */
  given: undefined,
  resolveGiven: undefined,
};

class AuthError extends Error {}

function authHeaders(extra) {
  return auth.token ? { ...extra, authorization: `Bearer ${auth.token}` } : extra;
}

/** Shows the prompt (saying why) and resolves once a token is given. */
function askForToken(refused) {
  if (!auth.needed) {
    auth.needed = true;
    auth.given = new Promise((resolve) => (auth.resolveGiven = resolve));
  }
  const why = document.getElementById('auth-why');
  if (refused) {
    why.classList.add('refused');
    why.textContent = 'The token was refused (unknown, rotated, or its user was removed): paste another.';
  }
  document.getElementById('auth').hidden = false;
  document.body.dataset.auth = 'needed';
  document.getElementById('auth-token').focus();
  return auth.given;
}

function setToken(token) {
  auth.token = token || undefined;
  if (auth.token) sessionStorage.setItem(TOKEN_KEY, auth.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById('auth-forget').hidden = !auth.token;
}

async function authFetch(address, path, init) {
  const res = await fetch(`${location.protocol}//${address}${path}`, { ...init, headers: authHeaders(init.headers ?? {}), cache: 'no-store' });
  if (res.status === 401) throw new AuthError(`${path}: HTTP 401`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res;
}

async function getJson(address, path, signal) {
  const res = await authFetch(address, path, { headers: { accept: 'application/json' }, signal });
  return res.json();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Code-unit order, as the SDK sorts ids (not localeCompare). */
function compareIds(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Why a node's ring route failed, for the page: a node of a release before it answers 404. */
function ringFailure(err, address) {
  if (err instanceof AuthError) return 'token refused';
  return /HTTP 404/.test(String(err?.message)) ? `${address} does not serve the ring (a release before protocol 6)` : `${address}: ${err?.name === 'TimeoutError' ? 'no answer' : 'unreachable'}`;
}

/** The data center of a member (members of a cluster of one name none). */
function dcOf(m) {
  return m?.dc ?? 'default';
}

/** Replicas per data center of the view's settings. */
function replicationOf(view) {
  return view.settings.replication ?? { default: view.settings.replicationFactor };
}

/** True when the cluster has several data centers. */
function multiDc(view) {
  return Object.keys(replicationOf(view)).length > 1;
}

/** Where the page reaches a member: as the node that serves the members list does (its remote address from another data center). */
function addressOf(m) {
  const self = state.view?.members.find((x) => x.id === state.view.self);
  return self && dcOf(self) !== dcOf(m) && m.remoteAddress ? m.remoteAddress : m.address;
}

// -----------------------------------------------------------------------------------------
// Membership: a long-poll that answers as soon as the view changes

async function watchMembers() {
  let address = originNode;
  let since = 0;
  for (;;) {
    try {
      const q = since ? `?since=${since}&waitMs=${LONG_POLL_WAIT_MS}` : '';
      const view = await getJson(address, `/internal/v1/members${q}`, AbortSignal.timeout(LONG_POLL_WAIT_MS + FETCH_TIMEOUT_MS));
      since = view.epoch;
      state.connected = true;
      applyView(view, address);
    } catch (err) {
      if (err instanceof AuthError) {
        // Authentication is on and there is no token, or it was refused: ask, then try again.
        state.connected = false;
        render();
        await askForToken(auth.token !== undefined);
        since = 0;
        continue;
      }
      // This node stopped answering: ask the next member we know of (epochs are per node).
      state.connected = false;
      render();
      const others = (state.view?.members ?? []).filter((m) => m.state !== 'left').map((m) => addressOf(m));
      const candidates = [originNode, ...others.filter((a) => a !== originNode)];
      address = candidates[(candidates.indexOf(address) + 1) % candidates.length];
      since = 0;
      await sleep(POLL_INTERVAL_MS);
    }
  }
}

function applyView(view, from) {
  const before = new Map((state.view?.members ?? []).map((m) => [m.id, m.state]));
  const first = !state.view;
  for (const m of view.members) {
    const was = before.get(m.id);
    if (first) addEvent(m.id, m.state, m.state, `${view.self}, when the page opened`);
    else if (was === undefined) addEvent(m.id, `new: ${m.state}`, m.state, view.self);
    else if (was !== m.state) addEvent(m.id, `${was} → ${m.state}`, m.state, view.self);
  }
  state.view = view;
  state.viewFrom = from;
  state.viewAtMs = Date.now();
  render();
  void refreshRing();
}

/** True when the ring shown is not the one of the member list's ring stamp. */
function ringStale() {
  const v = state.view;
  return v !== undefined && (state.ring === undefined || state.ring.ringEpoch !== v.ringEpoch || state.ring.ringDigest !== v.ringDigest || state.ringFrom !== state.viewFrom);
}

/** Fetches the ring from the node the member list came from, when it is stale (one fetch at a time; the poll loop tries again). */
async function refreshRing() {
  if (state.ringInFlight || !ringStale()) return;
  state.ringInFlight = true;
  const from = state.viewFrom;
  try {
    const ring = await getJson(from, RING_PATH, AbortSignal.timeout(FETCH_TIMEOUT_MS));
    state.ring = ring;
    state.ringFrom = from;
    state.ringError = undefined;
  } catch (err) {
    state.ringError = ringFailure(err, from);
  } finally {
    state.ringInFlight = false;
  }
  render();
  // The located key's replicas may have moved with the ring.
  if (state.locatedKey !== undefined) void locate(state.locatedKey);
}

/** Asks the node the member list came from where `key` lives (the latest key typed wins). */
async function locate(key) {
  const from = state.viewFrom;
  if (!from) return;
  try {
    const answer = await getJson(from, `${RING_PATH}?key=${encodeURIComponent(key)}`, AbortSignal.timeout(FETCH_TIMEOUT_MS));
    if (state.locatedKey !== key) return;
    state.located = answer;
  } catch (err) {
    if (state.locatedKey !== key) return;
    state.located = { key, error: /HTTP 400/.test(String(err?.message)) ? 'not a valid key (1 to 256 bytes)' : ringFailure(err, from) };
  }
  renderNeedle();
}

function addEvent(node, text, kind, seenBy) {
  state.events.unshift({ atMs: Date.now(), node, text, kind, seenBy });
  state.events.length = Math.min(state.events.length, MAX_EVENTS);
}

// -----------------------------------------------------------------------------------------
// Status and metrics of every node, once a second

async function pollNode(member) {
  const n = nodeState(member.id);
  if (n.inFlight) return;
  // A node the cluster has declared down is asked less often, until it is back.
  if (member.state === 'down' && n.error && Date.now() - n.triedAtMs < DOWN_POLL_INTERVAL_MS) return;
  n.inFlight = true;
  n.triedAtMs = Date.now();
  try {
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    const [status, text] = await Promise.all([
      getJson(addressOf(member), '/internal/v1/status', signal),
      authFetch(addressOf(member), '/metrics', { signal }).then((r) => r.text()),
    ]);
    const now = Date.now();
    n.status = status;
    n.statusAtMs = now;
    n.error = undefined;
    const summary = summarize(text, now);
    const prev = n.summaries[n.summaries.length - 1];
    n.summaries.push(summary);
    while (n.summaries.length > 2 && now - n.summaries[1].atMs > P99_WINDOW_MS) n.summaries.shift();
    const opsPerSec = ratePerSec(prev, summary, 'ops');
    if (opsPerSec !== undefined) pushHistory(n, opsPerSec);
  } catch (err) {
    n.error = err instanceof AuthError ? 'token refused' : err?.name === 'TimeoutError' ? 'no answer' : 'unreachable';
    pushHistory(n, undefined);
  } finally {
    n.inFlight = false;
  }
}

function pushHistory(n, value) {
  n.opsHistory.push(value);
  if (n.opsHistory.length > HISTORY_POINTS) n.opsHistory.shift();
}

async function pollLoop() {
  for (;;) {
    const started = Date.now();
    const members = (state.view?.members ?? []).filter((m) => m.state !== 'left');
    await Promise.race([Promise.allSettled(members.map(pollNode)), sleep(FETCH_TIMEOUT_MS)]);
    void refreshRing();
    render();
    await sleep(Math.max(100, POLL_INTERVAL_MS - (Date.now() - started)));
  }
}

/** Rates of the last poll and the p99s over the window, from a node's summaries. */
function nodeRates(n) {
  const s = n.summaries;
  const last = s[s.length - 1];
  const prev = s[s.length - 2];
  const oldest = s[0];
  return {
    ops: ratePerSec(prev, last, 'ops'),
    reads: ratePerSec(prev, last, 'reads'),
    writes: ratePerSec(prev, last, 'writes'),
    failed: ratePerSec(prev, last, 'failed'),
    api: ratePerSec(prev, last, 'apiRequests'),
    p99: quantileBetween(0.99, oldest, last, 'opLatency'),
    batchP99: quantileBetween(0.99, oldest, last, 'batchLatency'),
    windowOps: oldest && last && oldest !== last ? (bucketDelta(oldest.opLatency, last.opLatency)?.at(-1)?.count ?? 0) : 0,
  };
}

// -----------------------------------------------------------------------------------------
// Formatting

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function fmtRate(v) {
  if (v === undefined) return '–';
  if (v === 0) return '0';
  if (v < 10) return v.toFixed(1);
  if (v < 10_000) return Math.round(v).toLocaleString('en-US');
  if (v < 100_000) return `${(v / 1000).toFixed(1)}k`;
  return `${Math.round(v / 1000).toLocaleString('en-US')}k`;
}

function fmtSeconds(s) {
  if (s === undefined || !Number.isFinite(s)) return '–';
  if (s < 0.001) return `${(s * 1000).toFixed(2)} ms`;
  if (s < 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  return `${s.toFixed(2)} s`;
}

/** fmtSeconds as HTML with the unit set smaller, for the big numbers. */
function fmtSecondsHtml(s) {
  const text = fmtSeconds(s);
  const i = text.lastIndexOf(' ');
  return i < 0 ? esc(text) : `${esc(text.slice(0, i))}<span class="unit">${esc(text.slice(i + 1))}</span>`;
}

function fmtDuration(sec) {
  if (sec === undefined || !Number.isFinite(sec)) return '–';
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} m ${sec % 60} s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} m`;
  return `${Math.floor(sec / 86400)} d ${Math.floor((sec % 86400) / 3600)} h`;
}

function fmtAgo(ms) {
  return `${fmtDuration((Date.now() - ms) / 1000)} ago`;
}

function fmtCount(v) {
  return typeof v === 'number' ? v.toLocaleString('en-US') : '–';
}

function fmtBytes(b) {
  if (typeof b !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${i === 0 ? b : b.toFixed(1)} ${units[i]}`;
}

function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/**
 * The last anti-entropy repair as {text, title}: "–" when the server does not report the
 * field, "never" before the first round; else how long ago and what it reconciled.
 */
function describeRepair(status) {
  if (!status || !('lastRepair' in status)) return { text: '–', title: 'this server does not report repairs' };
  const r = status.lastRepair;
  if (r === null || r === undefined) return { text: 'never', title: 'no repair round has run on this node yet' };
  const startedMs = typeof r === 'string' ? Date.parse(r) : typeof r === 'number' ? r : Date.parse(r.finishedAt ?? r.startedAt ?? r.at ?? '');
  const endMs = Number.isFinite(startedMs) ? startedMs + (typeof r === 'object' && typeof r.durationMs === 'number' ? r.durationMs : 0) : NaN;
  const when = Number.isFinite(endMs) ? fmtAgo(endMs) : 'done';
  if (typeof r !== 'object') return { text: when, title: String(r) };
  const parts = [];
  if (typeof r.keysExchanged === 'number') parts.push(`${r.keysExchanged.toLocaleString('en-US')} keys reconciled`);
  if (typeof r.ranges === 'number') parts.push(`${r.ranges} ranges (${r.rangesDiffering ?? 0} differing)`);
  if (typeof r.durationMs === 'number') parts.push(`took ${fmtSeconds(r.durationMs / 1000)}`);
  if (r.errors) parts.push(`${r.errors} errors`);
  const short = typeof r.keysExchanged === 'number' ? ` · ${r.keysExchanged.toLocaleString('en-US')} keys` : '';
  return { text: `${when}${short}`, title: parts.join(', ') };
}

// -----------------------------------------------------------------------------------------
// Colours

/** A node's colour by its place in the id order: the palette, then hues a golden angle apart. */
function colorOf(id, allIds) {
  const i = allIds.indexOf(id);
  if (i < 0) return '#9ca3af';
  if (i < NODE_COLORS.length) return NODE_COLORS[i];
  return `hsl(${Math.round((i * 137.508) % 360)} 65% 52%)`;
}

// -----------------------------------------------------------------------------------------
// The ring

const SVG_NS = 'http://www.w3.org/2000/svg';
const CX = 200;
const CY = 200;
let ringSignature = '';
/** The ids in order, for colours (every member of the view). */
let ringIds = [];

/** The angle of a token (or of the end of a span, to + 1) on the ring's circle. */
function angleOf(token, tokenSpace) {
  return (token / tokenSpace) * 2 * Math.PI;
}

function xy(r, a) {
  return [(CX + r * Math.sin(a)).toFixed(2), (CY - r * Math.cos(a)).toFixed(2)];
}

function point(r, a) {
  return xy(r, a).join(' ');
}

/** An annulus sector from angle a0 to a1 (radians clockwise from 12 o'clock). */
function sectorPath(r0, r1, a0, a1) {
  if (a1 - a0 >= 2 * Math.PI - 1e-6) {
    // A full circle: two halves (an SVG arc cannot start and end at the same point).
    return sectorPath(r0, r1, a0, a0 + Math.PI) + sectorPath(r0, r1, a0 + Math.PI, a0 + 2 * Math.PI);
  }
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return `M ${point(r1, a0)} A ${r1} ${r1} 0 ${large} 1 ${point(r1, a1)} L ${point(r0, a1)} A ${r0} ${r0} 0 ${large} 0 ${point(r0, a0)} Z `;
}

function renderRing() {
  const view = state.view;
  const svg = document.getElementById('ring');
  const legend = document.getElementById('legend');
  const note = document.getElementById('ring-note');
  if (!view) return;
  const all = [...view.members].sort((a, b) => compareIds(a.id, b.id));
  const ids = all.map((m) => m.id);
  ringIds = ids;
  note.textContent = state.ringError ? `${state.ringError}${state.ring ? ' — showing the ring last read' : ''}` : '';
  note.hidden = !state.ringError;
  const ring = state.ring;
  if (!ring) return;
  const sig = `${ring.node}|${ring.ringEpoch}|${ring.ringDigest}|${all.map((m) => `${m.id}:${m.weight}:${m.state}`).join(',')}`;
  if (sig === ringSignature) return;
  ringSignature = sig;

  // The ring as the node computed it; each node's state as the member list says now.
  const byId = new Map(ring.members.map((m) => [m.id, m]));
  for (const m of all) byId.set(m.id, { ...byId.get(m.id), ...m, share: byId.get(m.id)?.share ?? 0, vnodes: byId.get(m.id)?.vnodes ?? 0 });
  const space = ring.tokenSpace;
  const ringMembers = [...byId.values()].filter((m) => m.vnodes > 0).sort((a, b) => compareIds(a.id, b.id));
  const vnodeTotal = ringMembers.reduce((n, m) => n + m.vnodes, 0);
  const stateOf = (id) => byId.get(id)?.state ?? 'up';

  let paths = '';
  // Outer ring: the arcs (runs of vnode ranges with one first owner), coloured by owner.
  for (const arc of ring.arcs) {
    const st = stateOf(arc.node);
    const fill = st === 'down' ? `url(#hatch-${cssId(arc.node)})` : colorOf(arc.node, ids);
    paths += `<path class="arc state-${esc(st)}" data-node="${esc(arc.node)}" d="${sectorPath(150, 182, angleOf(arc.from, space), angleOf(arc.to + 1, space))}" fill="${fill}"><title>${esc(arc.node)} (${esc(st)})</title></path>`;
  }
  // Inner ring: each node's total share, in id order.
  let a = 0;
  let labels = '';
  for (const m of ringMembers) {
    const a1 = a + m.share * 2 * Math.PI;
    const fill = m.state === 'down' ? `url(#hatch-${cssId(m.id)})` : colorOf(m.id, ids);
    paths += `<path class="arc share state-${esc(m.state)}" data-node="${esc(m.id)}" d="${sectorPath(92, 136, a, a1)}" fill="${fill}"><title>${esc(m.id)}: ${(m.share * 100).toFixed(1)}% of the keys as primary</title></path>`;
    if (m.share > 0.06) {
      const mid = (a + a1) / 2;
      const [x, y] = xy(114, mid);
      labels += `<text class="share-label" x="${x}" y="${y}" dominant-baseline="central" text-anchor="middle">${esc(m.id)}</text>`;
    }
    a = a1;
  }
  const hatches = all
    .map((m) => {
      const c = colorOf(m.id, ids);
      return `<pattern id="hatch-${cssId(m.id)}" patternUnits="userSpaceOnUse" width="8" height="8" patternTransform="rotate(45)"><rect width="8" height="8" fill="#fff"/><rect width="3.5" height="8" fill="${c}" opacity="0.55"/></pattern>`;
    })
    .join('');
  // Token-space ticks at 0, 1/4, 1/2 and 3/4 of the circle.
  const ticks = [
    [0, '0', 'middle', 'auto'],
    [0.25, '2³²/4', 'start', 'central'],
    [0.5, '2³²/2', 'middle', 'hanging'],
    [0.75, '3·2³²/4', 'end', 'central'],
  ]
    .map(([f, label, anchor, baseline]) => {
      const ang = f * 2 * Math.PI;
      const [x1, y1] = xy(184, ang);
      const [x2, y2] = xy(189, ang);
      const [tx, ty] = xy(193, ang);
      return `<line class="tick" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}"/><text class="tick-label" x="${tx}" y="${ty}" text-anchor="${anchor}" dominant-baseline="${baseline}">${label}</text>`;
    })
    .join('');
  svg.innerHTML =
    `<defs>${hatches}</defs>${paths}${labels}${ticks}` +
    `<text class="center-big" x="${CX}" y="${CY - 8}" text-anchor="middle">${ringMembers.length} node${ringMembers.length === 1 ? '' : 's'}</text>` +
    `<text class="center-small" x="${CX}" y="${CY + 14}" text-anchor="middle">${vnodeTotal.toLocaleString('en-US')} vnodes · N = ${view.settings.replicationFactor}</text>` +
    `<g id="needle"></g>`;
  svg.setAttribute('aria-label', `ring of ${ringMembers.length} nodes`);

  // While nodes join or leave, the shares once the move is done.
  const moving = ring.moving;
  legend.innerHTML =
    `<thead><tr><th>node</th><th>vnodes</th><th>share</th>${moving ? '<th>after move</th>' : ''}</tr></thead><tbody>` +
    all
      .map((v) => {
        const m = byId.get(v.id);
        const share = m.share;
        const after = moving ? `<td class="num">${((m.pendingShare ?? 0) * 100).toFixed(1)}%</td>` : '';
        return (
          `<tr data-node="${esc(m.id)}" data-share="${share}"><td><span class="swatch" style="background:${colorOf(m.id, ids)}"></span>${esc(m.id)}` +
          `${m.weight !== 1 ? ` <span class="muted">×${m.weight}</span>` : ''}</td><td class="num">${m.vnodes}</td>` +
          `<td class="num"><span class="bar"><span style="width:${(share * 100).toFixed(1)}%;background:${colorOf(m.id, ids)}"></span></span>${(share * 100).toFixed(1)}%</td>${after}</tr>`
        );
      })
      .join('') +
    '</tbody>';
  renderNeedle();
}

function cssId(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);
}

function renderNeedle() {
  const g = document.getElementById('needle');
  const out = document.getElementById('locate-result');
  const key = state.locatedKey;
  if (!g || !out) return;
  const located = state.located;
  if (!key || !state.view || !located || located.key !== key) {
    g.innerHTML = '';
    out.textContent = '';
    delete out.dataset.key;
    return;
  }
  if (located.error) {
    g.innerHTML = '';
    out.innerHTML = `<span class="problem">${esc(located.error)}</span>`;
    out.dataset.key = key;
    return;
  }
  const a = angleOf(located.token, state.ring?.tokenSpace ?? 2 ** 32);
  const [x1, y1] = xy(140, a);
  const [x2, y2] = xy(192, a);
  g.innerHTML = `<line class="needle" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}"/><circle class="needle-dot" cx="${x2}" cy="${y2}" r="4"/>`;
  const pills = (replicas) =>
    replicas.map((id, i) => `<span class="pill" style="border-color:${colorOf(id, ringIds)}">${esc(id)}${i === 0 ? ' <small>primary</small>' : ''}</span>`).join(' ');
  const head = `token <code>${located.token.toString(16).padStart(8, '0')}</code> → `;
  // One data center without racks: the preference list; else per data center, on distinct racks.
  const racks = state.view.members.some((m) => m.rack);
  out.innerHTML =
    head +
    (located.replicas.length === 1 && !racks
      ? pills(located.replicas[0].nodes)
      : located.replicas.map((p) => `<span class="muted">${esc(p.dc)}:</span> ${pills(p.nodes)}`).join(' '));
  out.dataset.key = key;
}

// -----------------------------------------------------------------------------------------
// Node cards, summary, events

function sparkline(values) {
  const w = 220;
  const h = 36;
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => v !== undefined);
  if (pts.length < 2) return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"></svg>`;
  const max = Math.max(1, ...pts.map(([, v]) => v));
  const x = (i) => ((i + HISTORY_POINTS - values.length) / (HISTORY_POINTS - 1)) * w;
  const y = (v) => h - 2 - (v / max) * (h - 6);
  const line = pts.map(([i, v], k) => `${k === 0 ? 'M' : 'L'}${x(i).toFixed(1)} ${y(v).toFixed(1)}`).join(' ');
  const area = `${line} L${x(pts[pts.length - 1][0]).toFixed(1)} ${h} L${x(pts[0][0]).toFixed(1)} ${h} Z`;
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><path class="spark-area" d="${area}"/><path class="spark-line" d="${line}"/></svg>`;
}

function renderNodes() {
  const view = state.view;
  const box = document.getElementById('nodes');
  if (!view) return;
  const all = [...view.members].sort((a, b) => compareIds(a.id, b.id));
  const ids = all.map((m) => m.id);
  box.innerHTML = all
    .map((m) => {
      const n = nodeState(m.id);
      const st = n.status;
      const r = n.error ? {} : nodeRates(n);
      const hints = st?.hintsPending;
      const byTarget = st?.hintsByTarget ? Object.entries(st.hintsByTarget).map(([t, c]) => `${c} for ${t}`).join(', ') : '';
      const repair = describeRepair(st);
      const moving = st?.moving ? `<div class="moving">${esc(st.moving.op ?? 'moving data')}…</div>` : '';
      const answered = n.statusAtMs ? `answered ${fmtAgo(n.statusAtMs)}` : 'no answer yet';
      const problem = n.error && m.state !== 'left' ? `<span class="problem">${esc(n.error)}</span> · ${answered}` : `uptime ${fmtDuration(st?.uptimeSec)}`;
      return `<article class="node state-${esc(m.state)}" data-node="${esc(m.id)}" data-state="${esc(m.state)}" style="--node-color:${colorOf(m.id, ids)}">
  <header>
    <span class="swatch"></span>
    <div class="ident"><h3>${esc(m.id)}</h3><div class="addr">${esc(m.address)}${m.dc || m.rack ? ` · <span class="topology" data-role="topology">${esc(dcOf(m))}${m.rack ? ` / ${esc(m.rack)}` : ''}</span>` : ''}</div></div>
    <span class="badge state-${esc(m.state)}" data-role="state">${esc(STATE_LABELS[m.state] ?? m.state)}</span>
  </header>
  ${moving}
  <dl class="stats">
    <div><dt>ops/s</dt><dd class="ops big" data-value="${r.ops ?? ''}" title="replica operations applied per second: ${fmtRate(r.reads)} reads, ${fmtRate(r.writes)} writes, ${fmtRate(r.failed)} failed">${fmtRate(r.ops)}</dd></div>
    <div><dt>p99</dt><dd class="p99 big" title="99th percentile time to apply one replica operation, last ${P99_WINDOW_MS / 1000} s (${fmtCount(r.windowOps)} ops); batch requests: ${fmtSeconds(r.batchP99)}">${fmtSecondsHtml(r.p99)}</dd></div>
    <div><dt>hints</dt><dd class="hints big${hints > 0 ? ' warn' : ''}" data-value="${hints ?? ''}" title="${esc(byTarget || 'writes held for nodes that were down')}">${fmtCount(hints)}</dd></div>
    <div><dt>keys</dt><dd title="approximate entries in the engine (with shadowed versions)">${fmtCount(st?.keys)}</dd></div>
    <div><dt>data</dt><dd title="${fmtBytes(st?.tableBytes)} in ${fmtCount(st?.tables)} tables, ${fmtBytes(st?.memtableBytes)} in memtables">${st ? fmtBytes((st.tableBytes ?? 0) + (st.memtableBytes ?? 0)) : '–'}</dd></div>
    <div><dt>repaired</dt><dd class="repair" title="${esc(repair.title)}">${esc(repair.text)}</dd></div>
  </dl>
  ${sparkline(n.opsHistory)}
  <footer>${problem}${m.address === originNode ? ' · serves this page' : ''}</footer>
</article>`;
    })
    .join('');
}

function renderSummary() {
  const view = state.view;
  const el = document.getElementById('summary');
  if (!view) return;
  const members = view.members.filter((m) => m.state !== 'left');
  const up = members.filter((m) => m.state === 'up').length;
  let ops = 0;
  let haveOps = false;
  let p99 = undefined;
  let hints = 0;
  for (const m of members) {
    const n = nodeState(m.id);
    const r = nodeRates(n);
    if (r.ops !== undefined && !n.error) {
      ops += r.ops;
      haveOps = true;
    }
    if (r.p99 !== undefined && !n.error) p99 = Math.max(p99 ?? 0, r.p99);
    hints += n.status?.hintsPending ?? 0;
  }
  const health = up === members.length ? 'ok' : up >= Math.floor(view.settings.replicationFactor / 2) + 1 ? 'warn' : 'bad';
  el.innerHTML = `
    <div class="tile ${health}"><div class="label">nodes up</div><div class="value" id="nodes-up">${up} / ${members.length}</div></div>
    <div class="tile"><div class="label">operations / s</div><div class="value">${haveOps ? fmtRate(ops) : '–'}</div></div>
    <div class="tile"><div class="label">worst node p99</div><div class="value">${fmtSecondsHtml(p99)}</div></div>
    <div class="tile ${hints > 0 ? 'warn' : ''}"><div class="label">hints pending</div><div class="value">${hints.toLocaleString('en-US')}</div></div>
    <div class="tile"><div class="label" title="replicas per key (N, per data center) and virtual nodes per node of weight 1">replicas · vnodes</div><div class="value">${
      multiDc(view)
        ? Object.entries(replicationOf(view))
            .map(([dc, n]) => `${esc(dc)}:${n}`)
            .join(' ')
        : `N = ${view.settings.replicationFactor}`
    } · ${view.settings.vnodesPerNode}</div></div>`;
}

/** The replication between data centers: per node and destination, from the nodes' status. */
function renderReplication() {
  const view = state.view;
  const card = document.getElementById('repl-card');
  const body = document.getElementById('repl');
  if (!view || !card || !body) return;
  if (!multiDc(view)) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const rows = [];
  const members = view.members.filter((m) => m.state !== 'left').sort((a, b) => compareIds(dcOf(a), dcOf(b)) || compareIds(a.id, b.id));
  for (const m of members) {
    const n = nodeState(m.id);
    for (const r of n.status?.repl ?? []) {
      const warn = r.dropped > 0 || r.shipper?.state === 'backing-off';
      rows.push(`<tr data-node="${esc(m.id)}" data-dest="${esc(r.dc)}" class="${warn ? 'warn' : ''}">
  <td><b>${esc(m.id)}</b> <span class="muted">${esc(dcOf(m))}</span></td>
  <td>→ ${esc(r.dc)}</td>
  <td class="num" data-role="pending" title="${fmtBytes(r.pendingBytes)} queued">${fmtCount(r.pending)}</td>
  <td class="num${r.dropped > 0 ? ' warn' : ''}" data-role="dropped" title="writes dropped from the queue (over its bound or its age limit): they arrive with the next full sync">${fmtCount(r.dropped)}</td>
  <td class="num" data-role="lag" data-value="${r.lagMs}">${fmtSecondsHtml(r.lagMs / 1000)}</td>
  <td title="${esc(r.shipper?.lastError ?? '')}">${esc(r.fullSyncRunning ? `${r.shipper?.state}, full sync running` : (r.shipper?.state ?? ''))}</td>
  <td>${r.lastOkFullSyncAt ? fmtAgo(Date.parse(r.lastOkFullSyncAt)) : '<span class="muted">none since start</span>'}</td>
</tr>`);
    }
  }
  body.innerHTML = `<thead><tr><th>node</th><th>to</th><th>queued</th><th>dropped</th><th>lag</th><th>shipping</th><th>last full sync</th></tr></thead><tbody>${rows.join('')}</tbody>`;
}

/**
 * The hot keys of every node that answered, merged by key: operations summed over the nodes
 * that list the key (its replicas), rates over each node's own window.
 */
function mergedHotKeys(members, limit = 10) {
  const byKey = new Map();
  for (const m of members) {
    const n = nodeState(m.id);
    const hk = n.error ? undefined : n.status?.hotKeys;
    if (!hk || !Array.isArray(hk.keys)) continue;
    const secs = Math.max(1, hk.windowMs) / 1000;
    for (const k of hk.keys) {
      let e = byKey.get(k.key);
      if (!e) {
        e = { key: k.key, display: k.display, count: 0, error: 0, reads: 0, writes: 0, perSec: 0, nodes: [] };
        byKey.set(k.key, e);
      }
      e.count += k.count;
      e.error += k.error;
      e.reads += k.reads;
      e.writes += k.writes;
      e.perSec += k.count / secs;
      e.nodes.push(m.id);
    }
  }
  return [...byKey.values()].sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, limit);
}

function renderHotKeys() {
  const table = document.getElementById('hotkeys');
  if (!table || !state.view) return;
  const members = state.view.members.filter((m) => m.state !== 'left');
  const ids = [...state.view.members].sort((a, b) => compareIds(a.id, b.id)).map((m) => m.id);
  const keys = mergedHotKeys(members);
  if (keys.length === 0) {
    table.innerHTML = '<tbody><tr><td class="muted">no operations in the window yet</td></tr></tbody>';
    return;
  }
  const top = keys[0].count;
  table.innerHTML =
    '<thead><tr><th>key</th><th>ops/s</th><th>reads · writes</th><th>nodes</th></tr></thead><tbody>' +
    keys
      .map(
        (k) =>
          `<tr data-key="${esc(k.display)}" data-count="${k.count}"><td class="key" title="${esc(`${k.count.toLocaleString('en-US')} ops ± ${k.error.toLocaleString('en-US')} in the window`)}"><code>${esc(k.display)}</code></td>` +
          `<td class="num"><span class="bar"><span style="width:${((k.count / top) * 100).toFixed(1)}%;background:var(--accent, #3b82f6)"></span></span>${fmtRate(k.perSec)}</td>` +
          `<td class="num">${fmtCount(k.reads)} · ${fmtCount(k.writes)}</td>` +
          `<td class="num">${k.nodes.map((id) => `<span class="swatch" title="${esc(id)}" style="background:${colorOf(id, ids)}"></span>`).join('')}</td></tr>`,
      )
      .join('') +
    '</tbody>';
}

function renderConnection() {
  const el = document.getElementById('conn');
  if (state.connected) {
    el.className = 'conn live';
    el.innerHTML = `<span class="dot"></span>live · members from <b>${esc(state.view?.self ?? '')}</b> (${esc(state.viewFrom ?? '')})`;
  } else {
    el.className = 'conn lost';
    el.innerHTML = `<span class="dot"></span>${state.view ? `lost ${esc(state.viewFrom ?? '')}, trying another node… (view from ${fmtAgo(state.viewAtMs)})` : `connecting to ${esc(originNode)}…`}`;
  }
}

function renderEvents() {
  const ol = document.getElementById('events');
  if (!state.view) return;
  ol.innerHTML = state.events
    .map(
      (e) =>
        `<li><time>${fmtTime(e.atMs)}</time><span class="swatch" style="background:${colorOf(e.node, ringIds)}"></span><b>${esc(e.node)}</b> <span class="badge state-${esc(e.kind)}">${esc(e.text)}</span> <span class="muted">seen by ${esc(e.seenBy)}</span></li>`,
    )
    .join('');
}

function render() {
  renderConnection();
  renderSummary();
  renderRing();
  renderNodes();
  renderHotKeys();
  renderReplication();
  renderEvents();
  document.body.dataset.ready = state.view ? 'true' : 'false';
}

// -----------------------------------------------------------------------------------------
// Interactions and start

function wire() {
  const svg = document.getElementById('ring');
  const focus = (id) => {
    if (id) svg.setAttribute('data-focus', id);
    else svg.removeAttribute('data-focus');
    for (const p of svg.querySelectorAll('.arc')) p.classList.toggle('focused', p.dataset.node === id);
  };
  for (const el of [document.getElementById('legend'), document.getElementById('nodes'), svg]) {
    el.addEventListener('mouseover', (e) => focus(e.target.closest('[data-node]')?.dataset.node));
    el.addEventListener('mouseleave', () => focus(undefined));
  }
  const input = document.getElementById('locate');
  let locateTimer;
  input.addEventListener('input', () => {
    state.locatedKey = input.value || undefined;
    renderNeedle();
    clearTimeout(locateTimer);
    if (state.locatedKey !== undefined) locateTimer = setTimeout(() => void locate(state.locatedKey), LOCATE_DEBOUNCE_MS);
  });
  // Relative times ("12 s ago") move on between polls too.
  setInterval(renderConnection, 1000);
  document.getElementById('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = document.getElementById('auth-token').value.trim();
    if (!value) return;
    setToken(value);
    document.getElementById('auth-token').value = '';
    document.getElementById('auth').hidden = true;
    delete document.body.dataset.auth;
    auth.needed = false;
    auth.resolveGiven?.();
  });
  document.getElementById('auth-forget').addEventListener('click', () => {
    setToken(undefined);
    location.reload();
  });
  document.getElementById('auth-forget').hidden = !auth.token;
}

wire();
void watchMembers();
void pollLoop();

// For the console and the tests.
globalThis.ringkvDashboard = { state, auth };
