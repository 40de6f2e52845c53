// Users, roles and tokens (storage-server/auth/README.md): `ringkv auth init` (the first
// admin, made with a node's certificate), `ringkv auth whoami`, `ringkv user
// add|remove|token|roles|list`, `ringkv role add|remove|grant|revoke|list`. Any node
// coordinates a change and pushes it to the others. A command that makes a token prints it
// alone on stdout (once: only its hash is kept); everything else goes to stderr.

import type { Command } from 'commander';
import { InvalidArgumentError, UnavailableError } from '../../sdk/errors.js';
import type { HttpTransport } from '../../sdk/transport.js';
import { MESSAGE_VERSION, Routes } from '../../sdk/wire/protocol.js';
import type { AuthAdminRequest, Propagation } from '../auth/auth-service.js';
import type { Grant } from '../auth/permissions.js';
import { describePrefix, parsePerms } from '../auth/permissions.js';
import { addTlsOptions, cliTransport, credentialsFrom, seedsFrom } from './common.js';
import type { TlsFlags } from './common.js';

type Flags = { seeds?: string; json?: boolean } & TlsFlags;

/** Sends one auth action to the first seed that answers. */
async function authCall<T>(t: HttpTransport, seeds: string[], req: Omit<AuthAdminRequest, 'v'>): Promise<T> {
  let lastErr: unknown;
  for (const s of seeds) {
    try {
      return await t.call<T>(s, Routes.authAdmin, { v: MESSAGE_VERSION.authAdmin, ...req }, { timeoutMs: 15_000 });
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Only an unreachable seed sends us to the next one: a refusal would be the same anywhere.
      if (code !== 'NODE_UNAVAILABLE' && code !== 'TIMEOUT') throw err;
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new UnavailableError('no seed answered');
}

async function run<T>(o: Flags, req: Omit<AuthAdminRequest, 'v'>): Promise<T> {
  const t = cliTransport(credentialsFrom(o));
  try {
    return await authCall<T>(t, seedsFrom(o.seeds), req);
  } finally {
    await t.close();
  }
}

function reportPropagation(p: Propagation | undefined): void {
  if (!p) return;
  process.stderr.write(`taken by ${p.acked.join(', ')}`);
  if (p.missed.length > 0) process.stderr.write(`; not reached: ${p.missed.join(', ')} (they take it at their next pull, when back)`);
  process.stderr.write('\n');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((x) => x.trim()).filter(Boolean)];
}

/** The prefix of a grant or revoke: --prefix P (non-empty) or --all, exactly one. */
function prefixOf(o: { prefix?: string; all?: boolean }): string {
  if (o.all && o.prefix !== undefined) throw new InvalidArgumentError('give either --prefix or --all');
  if (o.all) return '';
  if (o.prefix === undefined) throw new InvalidArgumentError('give --prefix <prefix> (e.g. app:) or --all for every key');
  // An empty --prefix (an unset shell variable, say) would grant every key: say --all for that.
  if (o.prefix === '') throw new InvalidArgumentError('--prefix is empty: write --all to grant every key');
  return o.prefix;
}

function printGrants(grants: Grant[]): string {
  return grants.length === 0 ? '(no grants)' : grants.map((g) => `${describePrefix(g.prefix)}: ${g.perms.join(',')}`).join('; ');
}

function opts(cmd: Command): Command {
  return addTlsOptions(cmd.option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)'));
}

export function registerAuthCommands(program: Command): void {
  const auth = program.command('auth').description('authentication: the first admin, and who a token is');
  opts(auth.command('init'))
    .description("make the first admin of a cluster: a role `admin` (admin on every key) and a user holding it; run it on a node's host with the node's certificate (--tls-cert/--tls-key or RINGKV_TLS_CERT/KEY). Prints the token once")
    .option('--user <name>', 'name of the admin user', 'admin')
    .action(async (o: Flags & { user: string }) => {
      const r = await run<{ user: string; token: string; propagation: Propagation }>(o, { action: 'init', name: o.user });
      process.stderr.write(`user ${r.user} made with role admin; its token (shown once, keep it):\n`);
      reportPropagation(r.propagation);
      process.stdout.write(`${r.token}\n`);
    });
  opts(auth.command('whoami'))
    .description('who the cluster takes you for: your user, roles and grants (or your node certificate)')
    .option('--json', 'print one JSON object')
    .action(async (o: Flags) => {
      const t = cliTransport(credentialsFrom(o));
      try {
        const seeds = seedsFrom(o.seeds);
        const r = await t.call<Record<string, unknown>>(seeds[0]!, Routes.whoami, undefined, { timeoutMs: 5000 });
        if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else if (r.kind === 'user') process.stdout.write(`user ${String(r.user)}; roles: ${(r.roles as string[]).join(', ') || 'none'}; ${printGrants(r.grants as Grant[])}\n`);
        else if (r.kind === 'node') process.stdout.write(`node ${String(r.node)} (a node certificate: every permission)\n`);
        else process.stdout.write(`anyone: authentication is off on ${String(r.node)}\n`);
      } finally {
        await t.close();
      }
    });

  const user = program.command('user').description('users: each holds roles and one token');
  opts(user.command('add'))
    .description('add a user; prints its token once (only its hash is kept)')
    .argument('<name>')
    .option('--role <role>', 'a role the user holds (repeat, or a comma list)', collect, [] as string[])
    .action(async (name: string, o: Flags & { role: string[] }) => {
      const r = await run<{ token: string; roles: string[]; propagation: Propagation }>(o, { action: 'user-add', name, roles: o.role });
      process.stderr.write(`user ${name} added (roles: ${r.roles.join(', ') || 'none'}); its token, shown once:\n`);
      reportPropagation(r.propagation);
      process.stdout.write(`${r.token}\n`);
    });
  opts(user.command('remove'))
    .description('remove a user: its token is refused everywhere (see the README for the bound)')
    .argument('<name>')
    .action(async (name: string, o: Flags) => {
      const r = await run<{ propagation: Propagation }>(o, { action: 'user-remove', name });
      process.stderr.write(`user ${name} removed\n`);
      reportPropagation(r.propagation);
    });
  opts(user.command('token'))
    .description('give a user a new token (the old one is refused from then on); prints it once')
    .argument('<name>')
    .action(async (name: string, o: Flags) => {
      const r = await run<{ token: string; propagation: Propagation }>(o, { action: 'user-token', name });
      process.stderr.write(`new token of ${name}, shown once:\n`);
      reportPropagation(r.propagation);
      process.stdout.write(`${r.token}\n`);
    });
  opts(user.command('roles'))
    .description("set a user's roles (none: no permission but status, members and metrics)")
    .argument('<name>')
    .argument('[roles...]', 'role names')
    .action(async (name: string, roles: string[], o: Flags) => {
      const r = await run<{ roles: string[]; propagation: Propagation }>(o, { action: 'user-roles', name, roles: roles.flatMap((x) => x.split(',')).filter(Boolean) });
      process.stderr.write(`user ${name} now holds: ${r.roles.join(', ') || 'no role'}\n`);
      reportPropagation(r.propagation);
    });
  opts(user.command('list'))
    .description('every user and its roles (never tokens)')
    .option('--json', 'print one JSON object')
    .action(async (o: Flags) => {
      const r = await run<{ users: { name: string; roles: string[]; createdAt: string; changedAt: string }[] }>(o, { action: 'user-list' });
      if (o.json) return void process.stdout.write(`${JSON.stringify({ users: r.users })}\n`);
      for (const u of r.users) process.stdout.write(`${u.name.padEnd(24)} roles: ${u.roles.join(', ') || '-'}  (created ${u.createdAt}, changed ${u.changedAt})\n`);
    });

  const role = program.command('role').description('roles: grants of read, write or admin on key prefixes');
  opts(role.command('add'))
    .description('add a role (without grants)')
    .argument('<name>')
    .action(async (name: string, o: Flags) => {
      reportPropagation((await run<{ propagation: Propagation }>(o, { action: 'role-add', name })).propagation);
      process.stderr.write(`role ${name} added\n`);
    });
  opts(role.command('remove'))
    .description('remove a role: the users holding it lose its grants')
    .argument('<name>')
    .action(async (name: string, o: Flags) => {
      reportPropagation((await run<{ propagation: Propagation }>(o, { action: 'role-remove', name })).propagation);
      process.stderr.write(`role ${name} removed\n`);
    });
  opts(role.command('grant'))
    .description('grant a role permissions on the keys starting with a prefix (bytes: app: does not cover app2:), or on every key with --all')
    .argument('<role>')
    .option('--prefix <prefix>', 'key prefix, e.g. app: (end it with a separator)')
    .option('--all', 'every key (the only place admin can be granted)')
    .requiredOption('--perm <perms>', 'read, write, readwrite or admin (comma list)')
    .action(async (name: string, o: Flags & { prefix?: string; all?: boolean; perm: string }) => {
      const r = await run<{ grants: Grant[]; propagation: Propagation }>(o, { action: 'role-grant', name, prefix: prefixOf(o), perms: parsePerms(o.perm) });
      process.stderr.write(`role ${name}: ${printGrants(r.grants)}\n`);
      reportPropagation(r.propagation);
    });
  opts(role.command('revoke'))
    .description('take back permissions (or, without --perm, the whole grant) on a prefix')
    .argument('<role>')
    .option('--prefix <prefix>', 'the prefix of the grant')
    .option('--all', 'the grant on every key')
    .option('--perm <perms>', 'only these permissions')
    .action(async (name: string, o: Flags & { prefix?: string; all?: boolean; perm?: string }) => {
      const r = await run<{ grants: Grant[]; propagation: Propagation }>(o, {
        action: 'role-revoke',
        name,
        prefix: prefixOf(o),
        ...(o.perm !== undefined ? { perms: parsePerms(o.perm) } : {}),
      });
      process.stderr.write(`role ${name}: ${printGrants(r.grants)}\n`);
      reportPropagation(r.propagation);
    });
  opts(role.command('list'))
    .description('every role and its grants')
    .option('--json', 'print one JSON object')
    .action(async (o: Flags) => {
      const r = await run<{ roles: { name: string; grants: Grant[] }[] }>(o, { action: 'role-list' });
      if (o.json) return void process.stdout.write(`${JSON.stringify({ roles: r.roles })}\n`);
      for (const x of r.roles) process.stdout.write(`${x.name.padEnd(24)} ${printGrants(x.grants)}\n`);
    });
}
