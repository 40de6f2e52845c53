// The user table of a cluster, replicated on every node: user and role management made by
// one node (the coordinator of an admin command), which stamps the change, writes it to its
// own table and pushes it to every live member before it answers; and a pull every
// syncIntervalMs that compares the table's digest with one random live peer and fetches the
// peer's table when they differ (a node that was down or partitioned catches up), pushing
// back what the peer lacks. The table travels only between node certificates over TLS.
// Message formats and bounds are in storage-server/auth/README.md. Single-threaded; one
// pull round at a time.

import type { MemberInfo } from '../../sdk/membership.js';
import { reachable } from '../../sdk/membership.js';
import { InvalidArgumentError, MalformedRequestError, NotFoundError } from '../../sdk/errors.js';
import type { Transport } from '../../sdk/transport.js';
import { checkProtocolVersion, MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { Logger } from '../logger.js';
import type { AuthRecord, RoleRecord, UserRecord } from './auth-records.js';
import { checkRecord } from './auth-records.js';
import type { AuthTable } from './auth-table.js';
import { stampMs } from './auth-table.js';
import type { Grant, Perm, Principal } from './permissions.js';
import { checkGrant, checkName, describePrefix, MAX_GRANTS_PER_ROLE, parsePerms, PERMS } from './permissions.js';
import { hashToken, newToken } from './tokens.js';

/** Most records a table may hold (users, roles and removals): beyond it `add` is refused. */
export const MAX_AUTH_RECORDS = 20_000;

/** POST Routes.authSync: a push (`records`), a pull (`digest`), or both. */
export interface AuthSyncRequest {
  v: number;
  from: string;
  /** The sender's table digest: the receiver answers with its whole table when its own differs. */
  digest?: string;
  /** Records for the receiver to merge (a coordinator's push, or what a puller found the peer lacks). */
  records?: AuthRecord[];
}

export interface AuthSyncResponse {
  v: number;
  from: string;
  /** The receiver's digest after merging what it was sent. */
  digest: string;
  /** The receiver's whole table, when the request had a digest other than its own. */
  records?: AuthRecord[];
}

export type AuthAdminAction =
  | 'init'
  | 'user-add'
  | 'user-remove'
  | 'user-token'
  | 'user-roles'
  | 'user-list'
  | 'role-add'
  | 'role-remove'
  | 'role-grant'
  | 'role-revoke'
  | 'role-list';

/** POST Routes.authAdmin. */
export interface AuthAdminRequest {
  v: number;
  action: AuthAdminAction;
  /** The user or role. */
  name?: string;
  /** user-add, user-roles, init: the user's roles. */
  roles?: string[];
  /** role-grant, role-revoke: the key prefix ('' = every key). */
  prefix?: string;
  /** role-grant: what to grant; role-revoke: what to take back (absent: the whole grant). */
  perms?: Perm[];
}

/** Which live members took a change before the coordinator answered. */
export interface Propagation {
  acked: string[];
  missed: string[];
}

export interface AuthServiceOptions {
  nodeId: string;
  table: AuthTable;
  transport: Transport;
  /** The live members this node knows (itself included). */
  members: () => MemberInfo[];
  log: Logger;
  syncIntervalMs: number;
  requestTimeoutMs: number;
}

/** The identity an admin action or whoami is made under (access-policy.ts decides it). */
export type AuthCaller = { kind: 'node'; id: string } | { kind: 'user'; principal: Principal } | { kind: 'anyone' };

export class AuthService {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  /** The last pull that completed: when, and with whom. */
  last: { atMs: number; peer: string; fetched: number; pushedBack: boolean } | undefined;
  readonly counters = { syncs: 0, syncFailures: 0, recordsPulled: 0, pushes: 0, pushFailures: 0 };

  constructor(private readonly o: AuthServiceOptions) {}

  get table(): AuthTable {
    return this.o.table;
  }

  /** Starts the pull rounds: one now, then every syncIntervalMs. */
  start(): void {
    const tick = () => {
      if (!this.stopped) void this.pullOnce();
    };
    setImmediate(tick);
    this.timer = setInterval(tick, this.o.syncIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.round?.catch(() => undefined);
    await this.o.table.flush();
  }

  /** Runs one pull round now (or waits for the one in progress). */
  pullOnce(): Promise<void> {
    this.round ??= this.pull().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  private peers(): MemberInfo[] {
    return this.o.members().filter((m) => m.id !== this.o.nodeId && reachable(m));
  }

  /** One round: forget old removals, compare digests with a random live peer, take what differs. */
  private async pull(): Promise<void> {
    await this.o.table.collectGarbage().catch(() => undefined);
    const peers = this.peers();
    if (peers.length === 0) return;
    const peer = peers[Math.floor(Math.random() * peers.length)]!;
    try {
      const req: AuthSyncRequest = { v: MESSAGE_VERSION.authSync, from: this.o.nodeId, digest: this.o.table.digest };
      const res = await this.o.transport.call<AuthSyncResponse>(peer.address, Routes.authSync, req, { timeoutMs: this.o.requestTimeoutMs });
      let fetched = 0;
      let pushedBack = false;
      if (res && Array.isArray(res.records)) {
        const taken = await this.o.table.merge(res.records.map(checkRecord));
        fetched = taken.length;
        this.counters.recordsPulled += fetched;
        if (fetched > 0) this.o.log.info({ peer: peer.id, records: fetched }, 'auth table: took changes from a peer');
        // The peer lacks something this node has: give it the whole table.
        if (this.o.table.digest !== res.digest) {
          pushedBack = true;
          const back: AuthSyncRequest = { v: MESSAGE_VERSION.authSync, from: this.o.nodeId, records: this.o.table.list() };
          await this.o.transport.call<AuthSyncResponse>(peer.address, Routes.authSync, back, { timeoutMs: this.o.requestTimeoutMs });
        }
      }
      this.counters.syncs++;
      this.last = { atMs: Date.now(), peer: peer.id, fetched, pushedBack };
    } catch (err) {
      this.counters.syncFailures++;
      this.o.log.debug({ peer: peer.id, err: (err as Error).message }, 'auth table sync failed');
    }
  }

  /** Handles POST Routes.authSync from a peer. */
  async handleSync(msg: AuthSyncRequest): Promise<AuthSyncResponse> {
    if (!msg || typeof msg !== 'object') throw new MalformedRequestError('auth sync needs a map');
    checkProtocolVersion(msg.v);
    if (msg.records !== undefined) {
      if (!Array.isArray(msg.records) || msg.records.length > 2 * MAX_AUTH_RECORDS) throw new MalformedRequestError(`records must be a list of at most ${2 * MAX_AUTH_RECORDS}`);
      const records = msg.records.map((r) => {
        try {
          return checkRecord(r);
        } catch (err) {
          throw new MalformedRequestError((err as Error).message);
        }
      });
      await this.o.table.merge(records);
    }
    const digest = this.o.table.digest;
    const res: AuthSyncResponse = { v: MESSAGE_VERSION.authSync, from: this.o.nodeId, digest };
    if (typeof msg.digest === 'string' && msg.digest !== digest) res.records = this.o.table.list();
    return res;
  }

  /** Pushes records this node just made to every live member; resolves with who took them. */
  private async push(records: AuthRecord[]): Promise<Propagation> {
    const peers = this.peers();
    const req: AuthSyncRequest = { v: MESSAGE_VERSION.authSync, from: this.o.nodeId, records };
    const acked: string[] = [this.o.nodeId];
    const missed: string[] = [];
    await Promise.all(
      peers.map(async (m) => {
        try {
          await this.o.transport.call<AuthSyncResponse>(m.address, Routes.authSync, req, { timeoutMs: this.o.requestTimeoutMs });
          acked.push(m.id);
        } catch (err) {
          missed.push(m.id);
          this.counters.pushFailures++;
          this.o.log.info({ peer: m.id, err: (err as Error).message }, 'auth change not pushed to a peer: it takes it at its next pull');
        }
      }),
    );
    this.counters.pushes++;
    // Members that are down now are not in `peers`: they pull on their return.
    for (const m of this.o.members()) if (m.id !== this.o.nodeId && !reachable(m) && m.state !== 'left') missed.push(m.id);
    return { acked: acked.sort(), missed: missed.sort() };
  }

  /** Stamps, stores and pushes a new version of one or more records. */
  private async commit(records: AuthRecord[]): Promise<Propagation> {
    await this.o.table.merge(records);
    return this.push(records);
  }

  private liveUser(name: string): UserRecord {
    const u = this.o.table.get('user', name);
    if (!u || u.deleted) throw new NotFoundError(`no user ${name}`);
    return u;
  }

  private liveRole(name: string): RoleRecord {
    const r = this.o.table.get('role', name);
    if (!r || r.deleted) throw new NotFoundError(`no role ${name}`);
    return r;
  }

  private checkRoles(roles: unknown): string[] {
    if (roles === undefined) return [];
    if (!Array.isArray(roles)) throw new InvalidArgumentError('roles must be a list of role names');
    const out = [...new Set(roles.map((r) => checkName('role', r)))].sort();
    for (const r of out) this.liveRole(r);
    return out;
  }

  private checkRoom(): void {
    if (this.o.table.size >= MAX_AUTH_RECORDS) throw new InvalidArgumentError(`the user table holds ${MAX_AUTH_RECORDS} records, its limit: remove users or roles first`);
  }

  private newRecordStamps(existing: AuthRecord | undefined): { genTs: number; genBy: string; ts: number; by: string } {
    const ts = this.o.table.nextStamp(existing ? Math.max(existing.ts, existing.genTs) : 0);
    return { genTs: ts, genBy: this.o.nodeId, ts, by: this.o.nodeId };
  }

  /** Handles one user or role management action (the caller is an admin or a node). */
  async handleAdmin(msg: AuthAdminRequest): Promise<Record<string, unknown>> {
    if (!msg || typeof msg !== 'object') throw new MalformedRequestError('an auth action needs a map');
    checkProtocolVersion(msg.v);
    const t = this.o.table;
    const self = this.o.nodeId;
    switch (msg.action) {
      case 'init': {
        // The first admin of a cluster: a role `admin` with admin on every key, and a user.
        const name = checkName('user', msg.name ?? 'admin');
        const existing = t.get('user', name);
        if (existing && !existing.deleted) throw new InvalidArgumentError(`user ${name} exists already: \`ringkv user token ${name}\` gives it a new token`);
        const records: AuthRecord[] = [];
        const role = t.get('role', 'admin');
        if (!role || role.deleted) {
          records.push({ kind: 'role', name: 'admin', ...this.newRecordStamps(role), deleted: false, grants: [{ prefix: '', perms: ['admin'] }] });
        } else if (!(role.grants ?? []).some((g) => g.prefix === '' && g.perms.includes('admin'))) {
          throw new InvalidArgumentError('a role named admin exists without admin on every key: add the first admin with user add and a role of your own');
        }
        this.checkRoom();
        const token = newToken();
        records.push({ kind: 'user', name, ...this.newRecordStamps(existing), deleted: false, tokenHash: hashToken(token), roles: ['admin'] });
        const propagation = await this.commit(records);
        return { user: name, roles: ['admin'], token, propagation };
      }
      case 'user-add': {
        const name = checkName('user', msg.name);
        const existing = t.get('user', name);
        if (existing && !existing.deleted) throw new InvalidArgumentError(`user ${name} exists already: \`ringkv user token ${name}\` gives it a new token`);
        const roles = this.checkRoles(msg.roles);
        this.checkRoom();
        const token = newToken();
        const rec: UserRecord = { kind: 'user', name, ...this.newRecordStamps(existing), deleted: false, tokenHash: hashToken(token), roles };
        return { user: name, roles, token, propagation: await this.commit([rec]) };
      }
      case 'user-remove': {
        const u = this.liveUser(checkName('user', msg.name));
        const rec: UserRecord = { kind: 'user', name: u.name, genTs: u.genTs, genBy: u.genBy, ts: t.nextStamp(u.ts), by: self, deleted: true };
        return { user: u.name, removed: true, propagation: await this.commit([rec]) };
      }
      case 'user-token': {
        const u = this.liveUser(checkName('user', msg.name));
        const token = newToken();
        const rec: UserRecord = { ...u, tokenHash: hashToken(token), ts: t.nextStamp(u.ts), by: self };
        return { user: u.name, token, propagation: await this.commit([rec]) };
      }
      case 'user-roles': {
        const u = this.liveUser(checkName('user', msg.name));
        const roles = this.checkRoles(msg.roles);
        const rec: UserRecord = { ...u, roles, ts: t.nextStamp(u.ts), by: self };
        return { user: u.name, roles, propagation: await this.commit([rec]) };
      }
      case 'user-list': {
        const users = t
          .list()
          .filter((r): r is UserRecord => r.kind === 'user' && !r.deleted)
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((u) => ({ name: u.name, roles: u.roles ?? [], createdAt: new Date(stampMs(u.genTs)).toISOString(), changedAt: new Date(stampMs(u.ts)).toISOString() }));
        return { users };
      }
      case 'role-add': {
        const name = checkName('role', msg.name);
        const existing = t.get('role', name);
        if (existing && !existing.deleted) throw new InvalidArgumentError(`role ${name} exists already`);
        this.checkRoom();
        const rec: RoleRecord = { kind: 'role', name, ...this.newRecordStamps(existing), deleted: false, grants: [] };
        return { role: name, propagation: await this.commit([rec]) };
      }
      case 'role-remove': {
        const r = this.liveRole(checkName('role', msg.name));
        const rec: RoleRecord = { kind: 'role', name: r.name, genTs: r.genTs, genBy: r.genBy, ts: t.nextStamp(r.ts), by: self, deleted: true };
        return { role: r.name, removed: true, propagation: await this.commit([rec]) };
      }
      case 'role-grant': {
        const r = this.liveRole(checkName('role', msg.name));
        const g = checkGrant({ prefix: msg.prefix, perms: msg.perms });
        const grants: Grant[] = (r.grants ?? []).map((x) => ({ prefix: x.prefix, perms: [...x.perms] }));
        const same = grants.find((x) => x.prefix === g.prefix);
        if (same) same.perms = PERMS.filter((p) => same.perms.includes(p) || g.perms.includes(p));
        else grants.push(g);
        if (grants.length > MAX_GRANTS_PER_ROLE) throw new InvalidArgumentError(`a role holds at most ${MAX_GRANTS_PER_ROLE} grants`);
        grants.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
        const rec: RoleRecord = { ...r, grants, ts: t.nextStamp(r.ts), by: self };
        return { role: r.name, grants, propagation: await this.commit([rec]) };
      }
      case 'role-revoke': {
        const r = this.liveRole(checkName('role', msg.name));
        if (typeof msg.prefix !== 'string') throw new InvalidArgumentError('role-revoke needs the prefix of the grant');
        const prefix = msg.prefix;
        const grants: Grant[] = (r.grants ?? []).map((x) => ({ prefix: x.prefix, perms: [...x.perms] }));
        const i = grants.findIndex((x) => x.prefix === prefix);
        if (i < 0) throw new NotFoundError(`role ${r.name} has no grant on ${describePrefix(prefix)}`);
        if (msg.perms === undefined) grants.splice(i, 1);
        else {
          const take = parsePerms(Array.isArray(msg.perms) ? msg.perms.join(',') : String(msg.perms));
          grants[i]!.perms = grants[i]!.perms.filter((p) => !take.includes(p));
          if (grants[i]!.perms.length === 0) grants.splice(i, 1);
        }
        const rec: RoleRecord = { ...r, grants, ts: t.nextStamp(r.ts), by: self };
        return { role: r.name, grants, propagation: await this.commit([rec]) };
      }
      case 'role-list': {
        const roles = t
          .list()
          .filter((r): r is RoleRecord => r.kind === 'role' && !r.deleted)
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((r) => ({ name: r.name, grants: r.grants ?? [] }));
        return { roles };
      }
      default:
        throw new InvalidArgumentError(`unknown auth action ${JSON.stringify((msg as { action?: unknown }).action)}`);
    }
  }

  /** This node's view of the table, for status. */
  status(): Record<string, unknown> {
    return {
      ...this.o.table.liveCounts,
      records: this.o.table.size,
      digest: this.o.table.digest.slice(0, 16),
      lastSync: this.last ? { at: new Date(this.last.atMs).toISOString(), peer: this.last.peer, fetched: this.last.fetched } : null,
    };
  }
}

/** What `whoami` answers for a caller. */
export function describeCaller(caller: AuthCaller): Record<string, unknown> {
  if (caller.kind === 'node') return { kind: 'node', node: caller.id, admin: true };
  if (caller.kind === 'anyone') return { kind: 'anyone', admin: true, note: 'authentication is off on this node' };
  const p = caller.principal;
  return { kind: 'user', user: p.user, roles: p.roles, admin: p.admin, grants: p.grantList };
}
