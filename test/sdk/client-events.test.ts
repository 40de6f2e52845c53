// ClientEvents without servers: the first member view is a baseline (a membership event,
// no up/down), later views give nodeDown / nodeUp on transitions only; a listener that
// throws is reported and does not stop the others; unknown events are refused.

import t from 'tap';
import { ClientEvents } from '../../sdk/client-events.js';
import type { MemberInfo, MemberState } from '../../sdk/membership.js';

const view = (states: Record<string, MemberState>): MemberInfo[] =>
  Object.entries(states).map(([id, state]) => ({ id, address: `127.0.0.1:${id.slice(1)}`, weight: 1, state, incarnation: 1 }));

t.test('membership transitions', async (t) => {
  const e = new ClientEvents();
  const log: string[] = [];
  e.on('membership', (m) => log.push(`membership ${m.changes.map((c) => `${c.id}:${c.from ?? '-'}>${c.to}`).join(' ')}`));
  e.on('nodeDown', (n) => log.push(`down ${n.id}`));
  e.on('nodeUp', (n) => log.push(`up ${n.id} from ${n.from}`));
  e.onMembers(view({ n1: 'up', n2: 'up', n3: 'down' }));
  e.onMembers(view({ n1: 'up', n2: 'up', n3: 'down' }));
  e.onMembers(view({ n1: 'up', n2: 'suspect', n3: 'down' }));
  e.onMembers(view({ n1: 'up', n2: 'down', n3: 'up' }));
  e.onMembers(view({ n1: 'up', n2: 'up', n3: 'up', n4: 'joining' }));
  t.same(log, [
    'membership n1:->up n2:->up n3:->down',
    'membership n2:up>suspect',
    'membership n2:suspect>down n3:down>up',
    'down n2',
    'up n3 from down',
    'membership n2:down>up n4:->joining',
    'up n2 from down',
  ]);
});

t.test('listeners', async (t) => {
  const e = new ClientEvents();
  const seen: string[] = [];
  const failing = () => {
    throw new Error('boom');
  };
  e.on('nodeDown', failing);
  e.on('nodeDown', (n) => seen.push(n.id));
  e.on('listenerError', (x) => seen.push(`error in ${x.event}: ${(x.error as Error).message}`));
  e.emit('nodeDown', { id: 'n1', address: 'a', from: 'up' });
  t.same(seen, ['error in nodeDown: boom', 'n1']);
  e.off('nodeDown', failing);
  e.emit('nodeDown', { id: 'n2', address: 'a', from: 'up' });
  t.same(seen.slice(2), ['n2']);
  // @ts-expect-error not an event
  t.throws(() => e.on('nodedown', () => undefined), { code: 'INVALID_ARGUMENT' });
});
