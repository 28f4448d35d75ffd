/**
 * A load worker: opens its share of clients to the server under test, answers Engine.IO pings,
 * counts the updates each client receives and how late they arrive, and optionally sends
 * acknowledged buys at a fixed rate. Driven by the orchestrator over IPC.
 *
 * Clients are bare `ws` sockets speaking the Socket.IO protocol by hand, or plain HTTP requests
 * reading forkcast's event stream (see frames.ts): socket.io-client or an EventSource library
 * costs several times more CPU per message, and the load generator has to stay well ahead of
 * the server it measures.
 */
import { get } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { WebSocket } from 'ws';

import { STOCK_NAMES } from '../protocol/stocks';
import {
  CONNECT,
  PONG,
  buyFrame,
  isPing,
  isSocketIoUpdate,
  parseAck,
  seqAndTs,
  socketIoUrl,
  sseReader,
} from './frames';
import { nowMs, record, type Histogram } from './stats';
import {
  nodeOf,
  type OrchestratorMessage,
  type WorkerMessage,
  type WorkerPlan,
  type WorkerReport,
} from './worker-protocol';

interface Client {
  /** Cuts the connection. */
  end: () => void;
  closed: boolean;
  lastSeq: number;
  /** Server ts of the last update; once past the window, no update of it can still come. */
  lastTs: number;
  disordered: boolean;
  /** Counts of the node this client is connected to. */
  node: NodeCounts;
}

interface NodeCounts {
  connected: number;
  delivered: number;
  late: number;
  latency: Histogram;
}

const clients: Client[] = [];
const buyers: WebSocket[] = [];
let plan: WorkerPlan;
let window = { from: Number.POSITIVE_INFINITY, to: Number.NEGATIVE_INFINITY };
let lost = 0;
let delivered = 0;
let late = 0;
const seqs = new Set<number>();
const latency: Histogram = new Map();
const ackLatency: Histogram = new Map();
const pendingAcks = new Map<number, number>();
let nextAckId = 0;
let buysSent = 0;
let acksOk = 0;
let acksRejected = 0;
let buyTimer: NodeJS.Timeout | undefined;
let nodes: NodeCounts[] = [];
/** Open clients that have not yet seen an update from after the window. */
let behind = 0;
/** Sends the report, while the orchestrator waits for it. */
let answer: (() => void) | null = null;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function onUpdate(client: Client, frame: Buffer, arrived: number): void {
  const { seq, ts } = seqAndTs(frame);
  // A frame without both numbers is not an update this benchmark can count; fail loudly
  // rather than let NaN into the counts.
  if (Number.isNaN(seq) || Number.isNaN(ts))
    throw new Error(`update without seq or ts: ${frame.toString().slice(0, 200)}`);
  if (seq <= client.lastSeq) client.disordered = true;
  client.lastSeq = seq;
  if (client.lastTs < window.to && ts >= window.to) passed();
  client.lastTs = ts;
  if (ts < window.from || ts >= window.to) return;
  delivered++;
  client.node.delivered++;
  seqs.add(seq);
  const ms = arrived - ts;
  record(latency, ms);
  record(client.node.latency, ms);
  if (ms > plan.lateAfterMs) {
    late++;
    client.node.late++;
  }
}

function onAck(frame: Buffer, arrived: number): void {
  const ack = parseAck(frame);
  if (!ack) return;
  const sentAt = pendingAcks.get(ack.id);
  if (sentAt === undefined) return;
  pendingAcks.delete(ack.id);
  record(ackLatency, arrived - sentAt);
  if (ack.ok) acksOk++;
  else acksRejected++;
  if (pendingAcks.size === 0) answerIfSettled();
}

/** A client can no longer receive an update of the window. */
function passed(): void {
  behind--;
  answerIfSettled();
}

function answerIfSettled(): void {
  if (behind <= 0 && pendingAcks.size === 0) answer?.();
}

/** What a client's connection reports, whatever it speaks. */
interface Connection {
  update: (frame: Buffer, arrived: number) => void;
  error: (error: Error) => void;
  close: () => void;
}

/**
 * Opens this worker's client number `index`; resolves once it has its snapshot, i.e. the
 * server fully knows it.
 */
function connect(index: number, isBuyer: boolean): Promise<Client> {
  const node = nodeOf(plan.firstClient + index, plan.ports.length);
  const port = plan.ports[node] ?? Number.NaN;
  const client: Client = {
    end: () => undefined,
    closed: false,
    lastSeq: -1,
    lastTs: Number.NEGATIVE_INFINITY,
    disordered: false,
    node: nodes[node]!,
  };
  return new Promise((resolve, reject) => {
    let ready = false;
    const connection: Connection = {
      update: (frame, arrived) => {
        onUpdate(client, frame, arrived);
        if (!ready) {
          ready = true;
          resolve(client);
        }
      },
      error: (error) => {
        if (!ready) reject(error);
      },
      close: () => {
        client.closed = true;
        if (!ready) reject(new Error('closed before the first update'));
        else {
          lost++;
          if (client.lastTs < window.to) passed();
        }
      },
    };
    client.end =
      plan.kind === 'sse' ? readStream(port, connection) : openSocket(port, isBuyer, connection);
  });
}

/** A WebSocket, raw or speaking Socket.IO; returns how to cut it. */
function openSocket(port: number, isBuyer: boolean, connection: Connection): () => void {
  const url = plan.kind === 'raw' ? `ws://127.0.0.1:${port}/` : socketIoUrl(port);
  const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
  ws.on('message', (data: Buffer) => {
    const arrived = nowMs();
    if (plan.kind === 'raw' || isSocketIoUpdate(data)) connection.update(data, arrived);
    else if (isPing(data)) ws.send(PONG);
    // Engine.IO open: join the main namespace.
    else if (data[0] === 0x30) ws.send(CONNECT);
    else if (isBuyer) onAck(data, arrived);
  });
  ws.on('error', connection.error);
  ws.on('close', connection.close);
  if (isBuyer) buyers.push(ws);
  return () => ws.terminate();
}

/** What an EventSource does, by hand: GET the event stream and read its updates as they come. */
function readStream(port: number, connection: Connection): () => void {
  let arrived = 0;
  const read = sseReader((type, data) => {
    if (type === 'update') connection.update(data, arrived);
  });
  const headers = { accept: 'text/event-stream' };
  const request = get({ host: '127.0.0.1', port, path: '/api/stream', headers, agent: false });
  request.on('response', (response) => {
    if (response.statusCode !== 200)
      return void request.destroy(new Error(`/api/stream answered ${response.statusCode}`));
    response.on('data', (chunk: Buffer) => {
      arrived = nowMs();
      read(chunk);
    });
    response.on('error', connection.error);
  });
  request.on('error', connection.error);
  request.on('close', connection.close);
  return () => request.destroy();
}

async function connectAll(): Promise<void> {
  const total = plan.watchers + plan.buyers;
  let started = 0;
  let failed = 0;
  let firstError: string | undefined;
  const lane = async (): Promise<void> => {
    while (started < total) {
      const index = started++;
      const isBuyer = index < plan.buyers;
      try {
        const client = await connect(index, isBuyer);
        clients.push(client);
        client.node.connected++;
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.connectConcurrency, total) }, lane));
  send({
    type: 'connected',
    connected: clients.length,
    failed,
    ...(firstError ? { firstError } : {}),
  });
}

/**
 * Sends buys round-robin over the buyers, paced by elapsed time rather than by timer count,
 * so the rate holds even when timers fire late under load.
 */
function startBuying(from: number, to: number): void {
  if (buyers.length === 0 || plan.buysPerSecond <= 0) return;
  let next = 0;
  const tick = (): void => {
    const now = nowMs();
    if (now >= to) {
      clearInterval(buyTimer);
      return;
    }
    const due = Math.floor(((now - from) / 1000) * plan.buysPerSecond);
    // A full round of closed buyers ends the loop rather than spinning on them.
    let skipped = 0;
    while (buysSent < due && skipped < buyers.length) {
      const buyer = buyers[next++ % buyers.length];
      if (buyer?.readyState !== WebSocket.OPEN) {
        skipped++;
        continue;
      }
      skipped = 0;
      const id = nextAckId++;
      pendingAcks.set(id, nowMs());
      buyer.send(buyFrame(id, STOCK_NAMES[id % STOCK_NAMES.length] ?? 'Apple'));
      buysSent++;
    }
  };
  setTimeout(
    () => {
      tick();
      buyTimer = setInterval(tick, 5);
    },
    Math.max(0, from - nowMs()),
  );
}

/** This worker's own stalls: while one lasts, its clients read nothing and the server queues. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

function report(): WorkerReport {
  return {
    connected: clients.length,
    lost,
    delivered,
    late,
    seqs: [...seqs].sort((a, b) => a - b),
    outOfOrder: clients.filter((client) => client.disordered).length,
    latency: [...latency.entries()],
    buysSent,
    acksOk,
    acksRejected,
    ackLatency: [...ackLatency.entries()],
    loopDelayMaxMs: loopDelay.max / 1e6,
    nodes: nodes.map((node) => ({
      connected: node.connected,
      delivered: node.delivered,
      late: node.late,
      latency: [...node.latency.entries()],
    })),
  };
}

process.on('message', (message: OrchestratorMessage) => {
  switch (message.type) {
    case 'plan':
      plan = message.plan;
      nodes = plan.ports.map(() => ({ connected: 0, delivered: 0, late: 0, latency: new Map() }));
      void connectAll();
      return;
    case 'measure':
      window = { from: message.from, to: message.to };
      behind = clients.filter((client) => !client.closed).length;
      loopDelay.reset();
      loopDelay.enable();
      startBuying(message.from, message.to);
      return;
    case 'report': {
      // As soon as every client has seen the window close and every buy is answered; what
      // has not arrived by `by` counts as missed.
      const timer = setTimeout(() => answer?.(), Math.max(0, message.by - Date.now()));
      answer = () => {
        clearTimeout(timer);
        answer = null;
        send({ type: 'report', report: report() });
        // Sampling only the window: outside it the wakeups would only add to the load.
        loopDelay.disable();
      };
      answerIfSettled();
      return;
    }
    case 'close':
      clearInterval(buyTimer);
      for (const client of clients) client.end();
      process.disconnect();
      return;
    default: {
      const unreachable: never = message;
      throw new Error(`unknown orchestrator message ${JSON.stringify(unreachable)}`);
    }
  }
});
// The orchestrator going away ends the worker, whatever state it is in.
process.on('disconnect', () => process.exit(0));
