// `ringkv certs`: makes the certificates of a local or test cluster with openssl — a CA,
// one node certificate per id, one client certificate per name — in a directory, keeping
// the files that exist (a later run adds certificates signed by the same CA).

import type { Command } from 'commander';
import { InvalidArgumentError } from '../../sdk/errors.js';
import { ensureCerts } from '../tls/cert-authority.js';

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export function registerCertsCommand(program: Command): void {
  program
    .command('certs')
    .description('make a CA, node and client certificates (EC P-256) for a cluster with openssl; existing files are kept')
    .option('--dir <dir>', 'directory of the files', './data/tls')
    .option('--nodes <ids>', 'node ids, comma-separated: node-<id>.crt/.key naming URI:ringkv://node/<id>', 'n1,n2,n3')
    .option('--clients <names>', 'client names, comma-separated: client-<name>.crt/.key naming URI:ringkv://client/<name>', 'dev')
    .option('--hosts <list>', 'DNS names and IP addresses added to node certificates (for curl and browsers)', 'localhost,127.0.0.1')
    .option('--days <n>', 'validity of node and client certificates in days', '365')
    .option('--ca-days <n>', 'validity of a new CA in days', '3650')
    .action((o: { dir: string; nodes: string; clients: string; hosts: string; days: string; caDays: string }) => {
      const days = Number(o.days);
      const caDays = Number(o.caDays);
      if (!Number.isInteger(days) || days < 1) throw new InvalidArgumentError('--days must be a positive integer');
      if (!Number.isInteger(caDays) || caDays < 1) throw new InvalidArgumentError('--ca-days must be a positive integer');
      const r = ensureCerts({ dir: o.dir, nodes: list(o.nodes), clients: list(o.clients), hosts: list(o.hosts), days, caDays });
      for (const f of r.created) process.stdout.write(`made ${f}\n`);
      for (const f of r.kept) process.stdout.write(`kept ${f}\n`);
    });
}
