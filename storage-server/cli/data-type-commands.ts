// `ringkv counter | set | dt`: data-type commands through the SDK. Each prints the value
// after it on stdout as JSON (a number, an array of members, an object), so it pipes;
// `dt get --json` prints {"type", "value", "context"}. Exit codes as for get/put.

import type { Command } from 'commander';
import { Option } from 'commander';
import { connect } from '../../sdk/client.js';
import type { RingkvClient } from '../../sdk/client.js';
import { parseConsistency } from '../../sdk/consistency.js';
import { InvalidArgumentError, NotFoundError } from '../../sdk/errors.js';
import { dataTypeView } from '../../sdk/data-types.js';
import { localDcFrom, localDcOption, seedsFrom } from './common.js';

interface CommonFlags {
  seeds?: string;
  localDc?: string;
  consistency: string;
  opId?: string;
}

function consistencyOption(): Option {
  return new Option('--consistency <level>', 'strong | eventual | all | quorum | localQuorum | localOne | eachQuorum | r=N,w=N (linearizable does not apply to data types)').default('strong');
}

async function withClient<T>(o: CommonFlags, fn: (kv: RingkvClient<Buffer>) => Promise<T>): Promise<T> {
  const kv = await connect({ seeds: seedsFrom(o.seeds), ...localDcFrom(o) });
  try {
    return await fn(kv);
  } finally {
    await kv.close();
  }
}

function amount(n: string | undefined): number {
  if (n === undefined) return 1;
  if (!/^\d{1,16}$/.test(n) || !Number.isSafeInteger(Number(n))) throw new InvalidArgumentError(`N must be a non-negative integer, got ${JSON.stringify(n)}`);
  return Number(n);
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function registerDataTypeCommands(program: Command): void {
  const counter = program.command('counter').description('counters: increments from any client add up');
  for (const [name, sign] of [
    ['incr', 1],
    ['decr', -1],
  ] as const) {
    counter
      .command(name)
      .description(`${sign > 0 ? 'add' : 'subtract'} N (default 1) ${sign > 0 ? 'to' : 'from'} the counter KEY; prints its value after`)
      .argument('<key>')
      .argument('[n]')
      .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
      .addOption(consistencyOption())
      .addOption(localDcOption())
      .option('--op-id <id>', 'operation id: the same id again (a retry) is applied once')
      .action(async (key: string, n: string | undefined, o: CommonFlags) => {
        const consistency = parseConsistency(o.consistency);
        await withClient(o, async (kv) => {
          const r = await kv.counter(key).increment(sign * amount(n), { consistency, ...(o.opId !== undefined ? { opId: o.opId } : {}) });
          print(r.value);
        });
      });
  }

  const set = program.command('set').description('add-wins sets of strings');
  set
    .command('add')
    .description('add MEMBERs to the set KEY; prints its members after')
    .argument('<key>')
    .argument('<members...>')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .option('--op-id <id>', 'operation id: the same id again (a retry) is applied once')
    .action(async (key: string, members: string[], o: CommonFlags) => {
      const consistency = parseConsistency(o.consistency);
      await withClient(o, async (kv) => {
        const r = await kv.set(key).update({ add: members }, { consistency, ...(o.opId !== undefined ? { opId: o.opId } : {}) });
        print(r.value);
      });
    });
  set
    .command('remove')
    .description('remove MEMBERs from the set KEY (those the --context of a `dt get --json` saw; without it, those the coordinating node has seen)')
    .argument('<key>')
    .argument('<members...>')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .option('--context <token>', 'the context printed by `ringkv dt get KEY --json`')
    .option('--op-id <id>', 'operation id: the same id again (a retry) is applied once')
    .action(async (key: string, members: string[], o: CommonFlags & { context?: string }) => {
      const consistency = parseConsistency(o.consistency);
      await withClient(o, async (kv) => {
        const r = await kv.set(key).update(
          { remove: members },
          { consistency, ...(o.opId !== undefined ? { opId: o.opId } : {}), ...(o.context !== undefined ? { context: o.context } : {}) },
        );
        print(r.value);
      });
    });

  program
    .command('dt')
    .description('data types: `dt get KEY` prints the value of a counter, set, register or map')
    .command('get')
    .description('print the value of the data type KEY as JSON (exit 1 when the key holds none)')
    .argument('<key>')
    .option('--seeds <list>', 'host:port of any node (env RINGKV_SEEDS)')
    .addOption(consistencyOption())
    .addOption(localDcOption())
    .option('--json', 'print {"type", "value", "context"}')
    .action(async (key: string, o: CommonFlags & { json?: boolean }) => {
      const consistency = parseConsistency(o.consistency);
      await withClient(o, async (kv) => {
        const r = await kv.dataTypeFetch(key, undefined, { consistency });
        if (!r) throw new NotFoundError(`key ${JSON.stringify(key)} holds no data type`);
        const view = dataTypeView(r.state);
        print(o.json ? view : view.value);
      });
    });
}
