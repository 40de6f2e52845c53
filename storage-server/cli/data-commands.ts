// `ringkv get | put | del`: data commands through the SDK. `get` prints the value alone on
// stdout (so it pipes); `put` takes the value as an argument or from stdin. With several
// data centers they need `--local-dc` (or RINGKV_LOCAL_DC), as any client: never guessed.

import type { Command } from 'commander';
import { Option } from 'commander';
import { connect } from '../../sdk/client.js';
import type { Consistency } from '../../sdk/consistency.js';
import { parseConsistency } from '../../sdk/consistency.js';
import { NotFoundError } from '../../sdk/errors.js';
import { addTlsOptions, credentialsFrom, localDcFrom, localDcOption, seedsFrom } from './common.js';
import type { TlsFlags } from './common.js';

function consistencyOption(): Option {
  return new Option('--consistency <level>', 'linearizable | strong | eventual | all | quorum | localQuorum | localOne | eachQuorum | r=2,w=1').default('strong');
}

/** connect's options of a data command: seeds, TLS, token, and the caller's data center when given. */
function connectOptions(o: { seeds?: string; localDc?: string } & TlsFlags) {
  const { tls, token } = credentialsFrom(o);
  return { seeds: seedsFrom(o.seeds), ...(tls ? { tls } : {}), ...(token ? { auth: { token } } : {}), ...localDcFrom(o) };
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function registerDataCommands(program: Command): void {
  addTlsOptions(program
    .command('get'))
    .description('print the value of KEY on stdout (exit 1 when missing)')
    .argument('<key>')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .option('--json', 'print {"value", "version", ...} as JSON')
    .action(async (key: string, o: { seeds?: string; consistency: string; json?: boolean } & { localDc?: string } & TlsFlags) => {
      const consistency: Consistency = parseConsistency(o.consistency);
      const kv = await connect(connectOptions(o));
      try {
        const r = await kv.get(key, { consistency });
        if (!r) throw new NotFoundError(`key ${JSON.stringify(key)} not found`);
        if (o.json) {
          const textual = r.contentType.startsWith('text/') || r.contentType.includes('json');
          process.stdout.write(
            `${JSON.stringify({ key, value: textual ? r.value.toString('utf8') : r.value.toString('base64'), encoding: textual ? 'utf8' : 'base64', version: r.version, contentType: r.contentType })}\n`,
          );
        } else {
          process.stdout.write(r.value);
          if (process.stdout.isTTY) process.stdout.write('\n');
        }
      } finally {
        await kv.close();
      }
    });

  addTlsOptions(program
    .command('put'))
    .description('write VALUE (or stdin when VALUE is omitted) under KEY')
    .argument('<key>')
    .argument('[value]')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .option('--ttl <seconds>', 'expire after this many seconds')
    .option('--content-type <type>', 'content type to store with the value')
    .action(async (key: string, value: string | undefined, o: { seeds?: string; consistency: string; ttl?: string; contentType?: string } & { localDc?: string } & TlsFlags) => {
      const consistency = parseConsistency(o.consistency);
      const bytes = value !== undefined ? Buffer.from(value, 'utf8') : await readStdin();
      const kv = await connect(connectOptions(o));
      try {
        const r = await kv.put(key, bytes, {
          consistency,
          ...(o.ttl !== undefined ? { ttl: Number(o.ttl) } : {}),
          contentType: o.contentType ?? (value !== undefined ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
        });
        process.stderr.write(`${r.created ? 'created' : 'updated'} ${key} (version ${r.version})\n`);
      } finally {
        await kv.close();
      }
    });

  addTlsOptions(program
    .command('del')
    .alias('delete'))
    .description('delete KEY (writes a tombstone)')
    .argument('<key>')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .action(async (key: string, o: { seeds?: string; consistency: string } & { localDc?: string } & TlsFlags) => {
      const consistency = parseConsistency(o.consistency);
      const kv = await connect(connectOptions(o));
      try {
        await kv.delete(key, { consistency });
      } finally {
        await kv.close();
      }
    });
}
