// Prints the top self-time functions ("file:function", % of busy samples) of V8 CPU
// profiles, e.g. those `npm run bench -- --profile <dir>` leaves behind.
//
//   npm run bench:profile-summary -- benchmarks/.work/profiles-*/*.cpuprofile --top 25

import { Command } from 'commander';
import { formatProfile, readProfile, summarizeProfile } from './harness/cpu-profile.js';

const program = new Command()
  .name('profile-summary')
  .argument('<files...>', '.cpuprofile files')
  .option('--top <n>', 'functions to list', (v) => Number(v), 20)
  .option('--json', 'print JSON instead of tables')
  .parse();
const o = program.opts<{ top: number; json?: boolean }>();
for (const file of program.args) {
  const s = summarizeProfile(readProfile(file), o.top);
  process.stdout.write(o.json ? `${JSON.stringify({ file, ...s })}\n` : `${formatProfile(file, s)}\n\n`);
}
