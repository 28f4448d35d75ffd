/** The API documents that scripts/contracts.mjs generates from the protocol's schemas at build
 * time (the unit project's global setup builds them). */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { validate } from '@readme/openapi-parser';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import type { OpenAPIV3_1 } from 'openapi-types';

import { version } from '../../package.json';
import { seedTickerState } from '../../protocol/ipc';
import { buyBodySchema, updateSchema } from '../../protocol/validation';
import { PATHS } from '../../server/paths';

const text = (name: string) => readFileSync(path.join(PATHS.contracts, name), 'utf8');

test('openapi.json is valid OpenAPI 3.1 and has every route of the HTTP API', async () => {
  const doc = JSON.parse(text('openapi.json')) as OpenAPIV3_1.Document;
  const routes = 'stocks history start stop buy stream openapi.json asyncapi.json'.split(' ');
  const paths = routes.map((route) => `/api/${route}`);
  expect([doc.info.version, Object.keys(doc.paths!)]).toEqual([version, paths]);
  expect(await validate(doc)).toEqual({ valid: true, warnings: [], specification: 'OpenAPI' });
});

test('asyncapi.json is valid AsyncAPI 3 and has every event, acks as replies', async () => {
  const diagnostics = await new Parser().validate(text('asyncapi.json'));
  // The parser's DiagnosticSeverity and its diagnostics' come from two copies of one package.
  const errors = diagnostics.filter(({ severity }) => +severity === +DiagnosticSeverity.Error);
  expect(errors).toEqual([]);
  const doc = JSON.parse(text('asyncapi.json')) as {
    channels: Record<'socketio' | 'stream', { messages: object }>;
    operations: Record<string, { reply?: { messages: object[] } }>;
  };
  const { socketio, stream } = doc.channels;
  expect(Object.keys(socketio.messages)).toEqual(
    expect.arrayContaining(['status', 'update', 'history', 'opening', 'start', 'stop', 'buy']),
  );
  expect(Object.keys(stream.messages)).toEqual(['update', 'status', 'opening', 'resync']);
  const replies = ['start', 'stop', 'buy'].map((op) => doc.operations[op]?.reply?.messages);
  expect(replies).toEqual(
    ['runAck', 'runAck', 'buyAck'].map((ack) => [{ $ref: `#/channels/socketio/messages/${ack}` }]),
  );
});

const seed = seedTickerState(1_700_000_000_000);
const negative = { ...seed, stocks: [{ name: 'Apple', price: -1 }, ...seed.stocks.slice(1)] };

test.each([
  ['openapi.json', Ajv2020],
  ['asyncapi.json', Ajv],
])('%s: Update and BuyBody take what zod takes and refuse what zod refuses', (name, Validator) => {
  const ajv = new Validator({ strict: false }).addSchema(JSON.parse(text(name)) as object, name);
  for (const [id, schema, good, bad] of [
    ['Update', updateSchema, seed, negative],
    ['BuyBody', buyBodySchema, { name: 'Apple' }, { name: 'apple' }],
  ] as const) {
    const matches = ajv.getSchema(`${name}#/components/schemas/${id}`)!;
    expect([good, bad].map((value) => schema.safeParse(value).success)).toEqual([true, false]);
    expect([id, [good, bad].map((value) => matches(value))]).toEqual([id, [true, false]]);
  }
});
