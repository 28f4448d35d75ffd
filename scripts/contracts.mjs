#!/usr/bin/env node
// @ts-check
// Writes dist/contracts/openapi.json (the HTTP API) and asyncapi.json (Socket.IO and the event
// stream) from the compiled protocol's zod schemas, so that the documents say what the server
// checks and cannot drift from it. ensure-built runs it after every server build.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// The same zod instance as the compiled protocol's (CommonJS): zod's ESM build is another copy.
/** @type {typeof import('zod')} */
const { z } = require('zod');
/** @type {typeof import('../protocol/validation.js')} */
const v = require(path.join(root, 'dist', 'protocol', 'validation.js'));
/** @type {typeof import('../protocol/events.js')} */
const { SOCKET_PATH } = require(path.join(root, 'dist', 'protocol', 'events.js'));
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

// The stream's own notice; the server builds it, the protocol has no schema for it.
const resyncSchema = z.strictObject({ lastEventId: z.string() });
const [runOk, buyOk] = [v.runAckSchema.options[0], v.buyAckSchema.options[0]];

// Named and described (in the protocol's own words) in zod's global registry: this process's own.
const named = z.globalRegistry;
for (const [schema, id, description] of /** @type {const} */ ([
  [v.stockSchema, 'Stock', undefined],
  [v.stockNameSchema, 'StockName', 'A listed stock, exactly as spelt here.'],
  [v.updateSchema, 'Update', 'The ticker state: every stock and its price, whether it runs.'],
  [v.statusSchema, 'Status', 'A message for people, and whether the ticker runs.'],
  [
    v.openingSchema,
    'Opening',
    "The prices at the last start (or the first the server knew), their update's seq, and when.",
  ],
  [
    v.historySchema,
    'History',
    'The latest updates as sent, oldest first, ending with the snapshot (alone if none was ever sent), so a late joiner draws trends at once.',
  ],
  [v.ackErrorSchema, 'AckError', 'A refused op, with a message written for the caller.'],
  [runOk, 'RunOk', 'Whether the ticker runs now.'],
  [v.runAckSchema, 'RunAck', 'The answer to start or stop.'],
  [buyOk, 'BuyOk', 'The stock bought, with its price after the buy.'],
  [v.buyAckSchema, 'BuyAck', 'The answer to a buy.'],
  [
    v.buyBodySchema,
    'BuyBody',
    "The body of `POST /api/buy`; a socket's `buy` sends the name alone.",
  ],
  [
    resyncSchema,
    'Resync',
    'The Last-Event-ID sent was too old or unknown: the update that follows is a fresh snapshot, not a resumption.',
  ],
]))
  named.add(schema, { id, description });
for (const [schema, description] of /** @type {const} */ ([
  [v.stockSchema.shape.price, 'The exact price; never rounded on the wire, clients format it.'],
  [v.updateSchema.shape.seq, '+1 with every update broadcast; survives crashes and restarts.'],
  [v.updateSchema.shape.ts, 'Milliseconds since the epoch when the update was made.'],
]))
  named.add(schema, { description });

/** @param {'draft-2020-12' | 'draft-7'} target */
function schemas(target) {
  const uri = (/** @type {string} */ id) => `#/components/schemas/${id}`;
  const out = z.toJSONSchema(named, { target, uri }).schemas;
  // Each would otherwise claim to be a document of its own.
  for (const schema of Object.values(out)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return out;
}

const ref = (/** @type {string} */ id) => ({ $ref: `#/components/schemas/${id}` });
const json = (/** @type {string} */ id) => ({
  content: { 'application/json': { schema: ref(id) } },
});
const refusal = (/** @type {string} */ name) => ({ $ref: `#/components/responses/${name}` });

/** @type {Record<string, [string, string, object?]>} */
const refusals = {
  Invalid: ['400', 'Invalid input.'],
  NoToken: [
    '401',
    'The server has a control token and the request carries none.',
    { 'WWW-Authenticate': { schema: { const: 'Bearer' } } },
  ],
  WrongToken: ['403', 'The control token is wrong.'],
  TooLarge: ['413', 'The body is over 4 KB.'],
  NotJson: ['415', 'The body is not application/json.'],
  RateLimited: [
    '429',
    'Too many ops.',
    { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
  ],
  Unavailable: ['503', 'The ticker is restarting, no node leads, or the server is shutting down.'],
  Internal: ['500', 'Something failed inside the server.'],
};

/** A POST that changes the ticker, answered as a socket's ack is. */
const control = (/** @type {string} */ summary, /** @type {string} */ ok, body = false) => ({
  post: {
    summary,
    security: [{}, { controlToken: [] }],
    ...(body && { requestBody: { required: true, ...json('BuyBody') } }),
    responses: {
      200: { description: 'Done.', ...json(ok) },
      ...Object.fromEntries(
        Object.entries(refusals).map(([name, [code]]) => [code, refusal(name)]),
      ),
    },
  },
});
const read = (/** @type {string} */ summary, /** @type {object} */ response) => ({
  get: { summary, responses: { 200: { description: 'OK.', ...response } } },
});
const document = { content: { 'application/json': { schema: { type: 'object' } } } };

const openapi = {
  openapi: '3.1.0',
  info: { title: 'forkcast HTTP API', version },
  paths: {
    '/api/stocks': read('The current snapshot, as an `update` carries it.', {
      headers: { 'Cache-Control': { schema: { const: 'no-store' } } },
      ...json('Update'),
    }),
    '/api/history': read('The latest updates, as a new socket gets them.', json('History')),
    '/api/start': control('Start the ticker; starting a running ticker is a no-op.', 'RunOk'),
    '/api/stop': control('Stop the ticker.', 'RunOk'),
    '/api/buy': control('Buy one stock: its price rises by a tenth.', 'BuyOk', true),
    '/api/stream': {
      get: {
        summary: 'Server-Sent Events: update (its id is the seq), status, opening and resync.',
        description:
          'A comment every 20 s keeps the connection alive. The events and their data are in asyncapi.json.',
        parameters: [
          {
            name: 'Last-Event-ID',
            in: 'header',
            description: 'The seq of the last update seen, to resume after it.',
            schema: { type: 'string' },
          },
        ],
        responses: {
          200: {
            description: 'The stream.',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
        },
      },
    },
    '/api/openapi.json': read('This document.', document),
    '/api/asyncapi.json': read('The Socket.IO and event stream contract (AsyncAPI 3).', document),
  },
  components: {
    schemas: schemas('draft-2020-12'),
    responses: Object.fromEntries(
      Object.entries(refusals).map(([name, [, description, headers]]) => [
        name,
        { description, headers, ...json('AckError') },
      ]),
    ),
    securitySchemes: {
      controlToken: {
        type: 'http',
        scheme: 'bearer',
        description: 'The CONTROL_TOKEN, needed only when the server has one.',
      },
    },
  },
};

// The payloads are draft-07 JSON Schema, which AsyncAPI's own schema format extends.
const payload = (/** @type {string} */ id) => ({
  schemaFormat: 'application/schema+json;version=draft-07',
  schema: ref(id),
});
/** @type {Record<string, [string | undefined, string]>} */
const events = {
  status: [
    'Status',
    'To the connecting socket, and to everyone when the ticker starts, stops, is lost or is back.',
  ],
  update: [
    'Update',
    'To everyone after every tick and after buys; to each new socket right after it connects.',
  ],
  history: ['History', 'To each new socket only, right after its snapshot `update`.'],
  opening: [
    'Opening',
    'What "change since open" counts from: to each new socket, and to everyone on a start.',
  ],
  start: [undefined, 'Start the ticker; starting a running ticker is a no-op.'],
  stop: [undefined, 'Stop the ticker.'],
  buy: ['StockName', 'Buy one stock: its price rises by a tenth.'],
  runAck: ['RunAck', 'The acknowledgement of start and stop.'],
  buyAck: ['BuyAck', 'The acknowledgement of a buy.'],
  resync: ['Resync', 'Sent before a fresh snapshot when a resumption is not possible.'],
};
const messages = (/** @type {string[]} */ names) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/messages/${name}` }]));
const on = (/** @type {string} */ channel, /** @type {string} */ name) => ({
  $ref: `#/channels/${channel}/messages/${name}`,
});
const operation = (
  /** @type {'send' | 'receive'} */ action,
  /** @type {string} */ channel,
  /** @type {string} */ name,
  ack = '',
) => ({
  action,
  channel: { $ref: `#/channels/${channel}` },
  messages: [on(channel, name)],
  ...(ack && {
    reply: { channel: { $ref: `#/channels/${channel}` }, messages: [on(channel, ack)] },
  }),
});

const asyncapi = {
  asyncapi: '3.0.0',
  info: {
    title: 'forkcast realtime API',
    version,
    description:
      "Socket.IO v4 events (what the server sends and what it receives, with their acknowledgements), and the same prices as Server-Sent Events. With a control token set, start, stop and buy need it (Socket.IO: the handshake's `auth: {token}`); without it they are refused.",
  },
  defaultContentType: 'application/json',
  servers: {
    socketio: {
      host: 'localhost:4561',
      protocol: 'ws',
      pathname: SOCKET_PATH,
      description: 'Socket.IO v4, default namespace.',
    },
    http: { host: 'localhost:4561', protocol: 'http', description: 'The same server.' },
  },
  channels: {
    socketio: {
      address: '/',
      servers: [{ $ref: '#/servers/socketio' }],
      messages: messages(Object.keys(events).filter((name) => name !== 'resync')),
    },
    stream: {
      address: '/api/stream',
      servers: [{ $ref: '#/servers/http' }],
      description: "An update event's id is its seq; send it back as Last-Event-ID to resume.",
      messages: messages(['update', 'status', 'opening', 'resync']),
    },
  },
  operations: {
    ...Object.fromEntries(
      ['status', 'update', 'history', 'opening'].map((name) => [
        name,
        operation('send', 'socketio', name),
      ]),
    ),
    start: operation('receive', 'socketio', 'start', 'runAck'),
    stop: operation('receive', 'socketio', 'stop', 'runAck'),
    buy: operation('receive', 'socketio', 'buy', 'buyAck'),
    ...Object.fromEntries(
      ['update', 'status', 'opening', 'resync'].map((name) => [
        `stream-${name}`,
        operation('send', 'stream', name),
      ]),
    ),
  },
  components: {
    schemas: schemas('draft-7'),
    messages: Object.fromEntries(
      Object.entries(events).map(([name, [id, description]]) => [
        name,
        { name, description, ...(id && { payload: payload(id) }) },
      ]),
    ),
  },
};

const dir = path.join(root, 'dist', 'contracts');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'openapi.json'), `${JSON.stringify(openapi, null, 2)}\n`);
writeFileSync(path.join(dir, 'asyncapi.json'), `${JSON.stringify(asyncapi, null, 2)}\n`);
