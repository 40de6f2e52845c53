// A memory limit for a process under test: a cgroup (v2 `memory.max`, or v1
// `memory.limit_in_bytes`) made as a child of this process's own memory cgroup (so it never
// escapes a limit this process is under) or else at the hierarchy's root, that a process is
// started inside (commandPrefix: a shell writes its pid into the group, then execs the
// command, so V8 sizes its heap for the limit from the start). read() gives the group's
// usage, peak, anonymous vs page-cache bytes and OOM kills. Needs root and a writable cgroup
// file system; open() returns undefined otherwise. Single-threaded; release() after the
// processes inside exited.

import fs from 'node:fs';
import path from 'node:path';

export interface MemoryReading {
  /** The limit, bytes. */
  limitBytes: number;
  /** memory.current / memory.usage_in_bytes: everything charged, page cache included. */
  currentBytes: number;
  /** memory.peak / memory.max_usage_in_bytes (undefined: the kernel keeps none). */
  peakBytes: number | undefined;
  /** Anonymous memory (heap, buffers): what cannot be reclaimed without swap. */
  anonBytes: number;
  /** Page cache charged to the group (reclaimable). */
  fileBytes: number;
  /** Processes the kernel's OOM killer killed in the group. */
  oomKills: number;
  /** Times the group hit its limit (v2 memory.events `max`, v1 memory.failcnt). */
  limitHits: number;
}

/** `key value` lines (memory.stat, memory.events, memory.oom_control) as numbers. */
export function parseKeyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * The memory cgroup path of a process from its /proc/<pid>/cgroup text: the v1 `memory`
 * line when there is one, else the v2 `0::` line; undefined when neither.
 */
export function ownMemoryCgroup(procCgroup: string): { version: 1 | 2; path: string } | undefined {
  const lines = procCgroup.split('\n');
  for (const l of lines) {
    const m = /^\d+:([^:]*):(.*)$/.exec(l);
    if (m && m[1]!.split(',').includes('memory')) return { version: 1, path: m[2]! };
  }
  for (const l of lines) {
    const m = /^0::(.*)$/.exec(l);
    if (m) return { version: 2, path: m[1]! };
  }
  return undefined;
}

export class MemoryLimit {
  private constructor(
    readonly dir: string,
    readonly version: 1 | 2,
    readonly limitBytes: number,
  ) {}

  /** A cgroup limited to `limitBytes`, or undefined (with the reason in `why`) when not possible. */
  static open(limitBytes: number, name = `ringkv-capacity-${process.pid}`, why: string[] = []): MemoryLimit | undefined {
    let own: ReturnType<typeof ownMemoryCgroup>;
    try {
      own = ownMemoryCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    } catch (err) {
      why.push(`cannot read /proc/self/cgroup: ${(err as Error).message}`);
      return undefined;
    }
    if (!own) {
      why.push('no memory cgroup in /proc/self/cgroup');
      return undefined;
    }
    const root = own.version === 1 ? '/sys/fs/cgroup/memory' : fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
    // The child of our own group first (its limit still applies above ours), then the root.
    const parents = [...new Set([path.join(root, own.path), root])];
    for (const parent of parents) {
      if (own.version === 2) {
        // v2 needs the memory controller enabled for the parent's children.
        try {
          const sub = fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8');
          if (!sub.split(/\s+/).includes('memory')) fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory');
        } catch (err) {
          why.push(`${parent}: memory controller not available to children (${(err as Error).message})`);
          continue;
        }
      }
      const dir = path.join(parent, name);
      try {
        fs.mkdirSync(dir);
        if (own.version === 2) {
          fs.writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
          // No swap: past the limit the group reclaims page cache, then OOM-kills.
          try {
            fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
          } catch {
            /* no swap accounting: nothing to turn off */
          }
        } else {
          fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
          try {
            fs.writeFileSync(path.join(dir, 'memory.swappiness'), '0');
          } catch {
            /* not settable here */
          }
        }
        return new MemoryLimit(dir, own.version, limitBytes);
      } catch (err) {
        why.push(`${dir}: ${(err as Error).message}`);
        try {
          fs.rmdirSync(dir);
        } catch {
          /* never made */
        }
      }
    }
    return undefined;
  }

  /**
   * A command prefix that starts the command inside the group: `[...prefix, command, ...args]`.
   * The shell moves itself into the group, then execs, so the pid is the command's own.
   */
  commandPrefix(): string[] {
    const procs = path.join(this.dir, 'cgroup.procs');
    return ['/bin/sh', '-c', `echo $$ > '${procs}' && exec "$0" "$@"`];
  }

  /** Moves a running process into the group (what it allocated before stays charged elsewhere). */
  add(pid: number): void {
    fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
  }

  private file(name: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir, name), 'utf8');
    } catch {
      return undefined;
    }
  }

  read(): MemoryReading {
    const num = (name: string) => {
      const s = this.file(name);
      return s === undefined ? undefined : Number(s.trim());
    };
    const stat = parseKeyValues(this.file('memory.stat') ?? '');
    if (this.version === 2) {
      const events = parseKeyValues(this.file('memory.events') ?? '');
      return {
        limitBytes: this.limitBytes,
        currentBytes: num('memory.current') ?? 0,
        peakBytes: num('memory.peak'),
        anonBytes: stat.anon ?? 0,
        fileBytes: stat.file ?? 0,
        oomKills: events.oom_kill ?? 0,
        limitHits: events.max ?? 0,
      };
    }
    const oom = parseKeyValues(this.file('memory.oom_control') ?? '');
    return {
      limitBytes: this.limitBytes,
      currentBytes: num('memory.usage_in_bytes') ?? 0,
      peakBytes: num('memory.max_usage_in_bytes'),
      anonBytes: stat.rss ?? 0,
      fileBytes: stat.cache ?? 0,
      oomKills: oom.oom_kill ?? 0,
      limitHits: num('memory.failcnt') ?? 0,
    };
  }

  /** Removes the group; call after its processes exited. */
  release(): void {
    try {
      fs.rmdirSync(this.dir);
    } catch {
      /* a process still in it: the kernel keeps the group until it is empty */
    }
  }
}

/** VmRSS and VmHWM (peak RSS) of a live process, bytes; undefined once it is gone. */
export function processRss(pid: number): { rssBytes: number; peakRssBytes: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
