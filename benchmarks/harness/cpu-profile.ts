// Reading V8 CPU profiles (.cpuprofile, from `node --cpu-prof` or the inspector): self time
// per function, as "file:function" with its share of all samples and of the busy ones
// (samples that are not idle). Also records a profile of the current process through the
// inspector, for the load generator and the SDK in it. Pure functions besides the recorder.

import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { REPO_ROOT } from './processes.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  /** "file:function" (file relative to the repository, or the package under node_modules). */
  name: string;
  selfMs: number;
  /** Share of all samples, in percent. */
  pct: number;
  /** Share of busy samples (not idle), in percent. */
  busyPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  top: ProfileEntry[];
  /** Self time grouped by area: sdk/, storage-server/, benchmarks/, each node_modules package, node internals, GC. */
  byArea: ProfileEntry[];
}

function shortFile(url: string): string {
  if (!url) return '';
  let p = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + '/node_modules/'.length);
  if (p.startsWith(REPO_ROOT + '/')) p = path.relative(REPO_ROOT, p);
  return p.replace(/^dist\//, '');
}

function areaOf(file: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return '(program)';
  if (!file) return 'native';
  if (file.startsWith('node:')) return 'node internals';
  if (file.startsWith('sdk/')) return 'sdk/';
  if (file.startsWith('storage-server/')) return `storage-server/${file.split('/')[1]?.includes('.') ? '' : file.split('/')[1] + '/'}`;
  if (file.startsWith('benchmarks/')) return 'benchmarks/';
  if (!file.startsWith('/')) {
    const parts = file.split('/');
    return `npm:${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return 'other';
}

/** Self time per function and per area; `top` keeps the `topN` largest functions. */
export function summarizeProfile(p: CpuProfile, topN = 20): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // Each sample's time is the delta to the next one.
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i + 1] ?? 0;
      selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + Math.max(0, dt));
    }
  } else {
    const total = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
    const per = (p.endTime - p.startTime) / total;
    for (const n of p.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * per);
  }
  const fnTotals = new Map<string, number>();
  const areaTotals = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    totalUs += us;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idleUs += us;
      continue;
    }
    const file = shortFile(n.callFrame.url);
    const name = file ? `${file}:${fn}` : fn;
    fnTotals.set(name, (fnTotals.get(name) ?? 0) + us);
    const area = areaOf(file, fn);
    areaTotals.set(area, (areaTotals.get(area) ?? 0) + us);
  }
  const busy = Math.max(1, totalUs - idleUs);
  const entries = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 100) / 10, pct: Math.round((us / Math.max(1, totalUs)) * 1000) / 10, busyPct: Math.round((us / busy) * 1000) / 10 }));
  return { totalMs: Math.round(totalUs / 1000), idleMs: Math.round(idleUs / 1000), top: entries(fnTotals).slice(0, topN), byArea: entries(areaTotals) };
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
}

/** Prints a summary as a table. */
export function formatProfile(label: string, s: ProfileSummary): string {
  const lines = [`${label}: ${s.totalMs} ms sampled, ${s.idleMs} ms idle (busy ${s.totalMs - s.idleMs} ms)`];
  lines.push('  busy%  self ms  function');
  for (const e of s.top) lines.push(`  ${e.busyPct.toFixed(1).padStart(5)}  ${e.selfMs.toFixed(0).padStart(7)}  ${e.name}`);
  lines.push('  by area:');
  for (const e of s.byArea.slice(0, 12)) lines.push(`  ${e.busyPct.toFixed(1).padStart(5)}  ${e.selfMs.toFixed(0).padStart(7)}  ${e.name}`);
  return lines.join('\n');
}

/** Profiles this process (the load generator and the SDK) between start() and stop(). */
export class SelfProfiler {
  private readonly session = new Session();
  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 1000 });
    await this.session.post('Profiler.start');
  }

  /** Stops, writes the profile to `file` and returns it. */
  async stop(file: string): Promise<CpuProfile> {
    const { profile } = (await this.session.post('Profiler.stop')) as { profile: CpuProfile };
    this.session.disconnect();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(profile));
    return profile;
  }
}
