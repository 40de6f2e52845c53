// The JSON operations of POST /api/v1/dt/{key} (no server): each shape parses to the
// operation the data types apply — map fields named `${name}_${type}` by the last
// underscore, registers stamped by the coordinator and holding JSON text — and malformed
// bodies are refused with INVALID_ARGUMENT or MALFORMED_REQUEST.

import t from 'tap';
import { parseOperation } from '../../../storage-server/http/data-type-api.js';

const stamp = () => ({ ts: 42, writer: 'n1' });

t.test('the JSON operations', async (t) => {
  t.same(parseOperation({ type: 'counter', increment: 5 }, stamp), { type: 'counter', increment: 5 });
  t.same(parseOperation({ type: 'counter', decrement: 5 }, stamp), { type: 'counter', increment: -5 });
  t.same(parseOperation({ type: 'set', add: ['a'], remove: ['b'] }, stamp), { type: 'set', add: ['a'], remove: ['b'] });
  t.same(parseOperation({ type: 'register', set: { a: [1, 'x'] } }, stamp), { type: 'register', assign: '{"a":[1,"x"]}', ts: 42, writer: 'n1' });
  t.same(parseOperation({ type: 'register', set: 'Ada' }, stamp), { type: 'register', assign: '"Ada"', ts: 42, writer: 'n1' }, 'a string is stored as JSON text too');
  t.same(
    parseOperation(
      {
        type: 'map',
        update: { first_name_register: { set: 'Ada' }, visits_counter: { increment: 1 }, admin_flag: { enable: false }, address_map: { update: { city_register: { set: 'Paris' } }, remove: ['zip_set'] } },
        remove: ['old_counter'],
      },
      stamp,
    ),
    {
      type: 'map',
      updates: [
        { name: 'first_name', op: { type: 'register', assign: '"Ada"', ts: 42, writer: 'n1' } },
        { name: 'visits', op: { type: 'counter', increment: 1 } },
        { name: 'admin', op: { type: 'flag', enable: false } },
        { name: 'address', op: { type: 'map', updates: [{ name: 'city', op: { type: 'register', assign: '"Paris"', ts: 42, writer: 'n1' } }], removes: [{ name: 'zip', type: 'set' }] } },
      ],
      removes: [{ name: 'old', type: 'counter' }],
    },
    'a field name is what precedes the last underscore',
  );
});

t.test('malformed operations', async (t) => {
  const bad: [unknown, string][] = [
    [null, 'MALFORMED_REQUEST'],
    [[], 'MALFORMED_REQUEST'],
    [{ type: 'flag', enable: true }, 'INVALID_ARGUMENT'],
    [{ type: 'counter' }, 'INVALID_ARGUMENT'],
    [{ type: 'counter', increment: '5' }, 'INVALID_ARGUMENT'],
    [{ type: 'counter', increment: 2 ** 53 }, 'INVALID_ARGUMENT'],
    [{ type: 'counter', increment: 1, context: 'x' }, 'INVALID_ARGUMENT'],
    [{ type: 'set' }, 'INVALID_ARGUMENT'],
    [{ type: 'set', add: 'a' }, 'INVALID_ARGUMENT'],
    [{ type: 'set', add: [1] }, 'INVALID_ARGUMENT'],
    [{ type: 'register' }, 'INVALID_ARGUMENT'],
    [{ type: 'map' }, 'INVALID_ARGUMENT'],
    [{ type: 'map', update: { nounderscore: { set: 1 } } }, 'INVALID_ARGUMENT'],
    [{ type: 'map', update: { _register: { set: 1 } } }, 'INVALID_ARGUMENT'],
    [{ type: 'map', update: { x_counter: { set: 1 } } }, 'INVALID_ARGUMENT'],
    [{ type: 'map', update: { x_counter: 5 } }, 'MALFORMED_REQUEST'],
    [{ type: 'map', remove: 'x_counter' }, 'INVALID_ARGUMENT'],
  ];
  for (const [body, code] of bad) t.throws(() => parseOperation(body, stamp), { code }, JSON.stringify(body));
  let deep: Record<string, unknown> = { c_counter: { increment: 1 } };
  for (let i = 0; i < 40; i++) deep = { m_map: { update: deep } };
  t.throws(() => parseOperation({ type: 'map', update: deep }, stamp), { code: 'INVALID_ARGUMENT' }, 'maps nest at most 32 deep');
});
