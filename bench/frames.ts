/**
 * Just enough of Engine.IO 4 / Socket.IO 5 over a bare WebSocket, and of Server-Sent Events, for
 * a load client that has to keep up with thousands of connections on one core: frames are looked
 * at as bytes, and only the two numbers the benchmark needs (`seq`, `ts`) are read out of an update.
 *
 * Engine.IO packet types: 0 open, 2 ping, 3 pong, 4 message. Socket.IO packet types inside a
 * message: 0 connect, 2 event, 3 ack. So `40` connects to the main namespace, `42[...]` is an
 * event and `43<id>[...]` the answer to the event sent with ack id <id>.
 */

/** The Engine.IO handshake URL for a WebSocket-only client (no long-polling first). */
export function socketIoUrl(port: number, path = '/socket.io/'): string {
  return `ws://127.0.0.1:${port}${path}?EIO=4&transport=websocket`;
}

export const PONG = '3';
export const CONNECT = '40';

const UPDATE_PREFIX = Buffer.from('42["update",');
const SEQ_KEY = Buffer.from('"seq":');
const TS_KEY = Buffer.from('"ts":');

export function isPing(frame: Buffer): boolean {
  return frame.length === 1 && frame[0] === 0x32;
}

export function isSocketIoUpdate(frame: Buffer): boolean {
  return (
    frame.length > UPDATE_PREFIX.length &&
    frame.compare(UPDATE_PREFIX, 0, UPDATE_PREFIX.length, 0, UPDATE_PREFIX.length) === 0
  );
}

/** Reads a non-negative integer written in ASCII at `offset`; NaN if there is none. */
function integerAt(frame: Buffer, offset: number): number {
  let value = 0;
  let digits = 0;
  for (let i = offset; i < frame.length; i++) {
    const byte = frame[i] ?? 0;
    if (byte < 0x30 || byte > 0x39) break;
    value = value * 10 + (byte - 0x30);
    digits++;
  }
  return digits > 0 ? value : Number.NaN;
}

/**
 * `seq` and `ts` of an update payload (Socket.IO event frame or the raw baseline's bare JSON).
 * The payload's only nested objects are the stocks, which have neither key, so the first
 * occurrence of each is the update's own.
 */
export function seqAndTs(frame: Buffer): { seq: number; ts: number } {
  const seqAt = frame.indexOf(SEQ_KEY);
  const tsAt = frame.indexOf(TS_KEY);
  return {
    seq: seqAt < 0 ? Number.NaN : integerAt(frame, seqAt + SEQ_KEY.length),
    ts: tsAt < 0 ? Number.NaN : integerAt(frame, tsAt + TS_KEY.length),
  };
}

/** `42<id>["buy","<name>"]`: a buy that asks for an acknowledgement with this id. */
export function buyFrame(ackId: number, name: string): string {
  return `42${ackId}${JSON.stringify(['buy', name])}`;
}

/**
 * The ack id and whether the result said ok, for a `43<id>[{"ok":...}]` frame; null for any
 * other frame.
 */
export function parseAck(frame: Buffer): { id: number; ok: boolean } | null {
  if (frame.length < 4 || frame[0] !== 0x34 || frame[1] !== 0x33) return null;
  const id = integerAt(frame, 2);
  if (Number.isNaN(id)) return null;
  const ok = frame.includes('"ok":true');
  return { id, ok };
}

const LF = 0x0a;
const NEWLINE = Buffer.from('\n');

/**
 * Reads a Server-Sent Events stream cut anywhere into chunks: feed it each chunk as it arrives,
 * and it calls `onEvent` with the type and data of each event as soon as it is complete. Lines
 * end with LF alone, as better-sse writes them; comments and fields other than `event` and
 * `data` are skipped, and an event without data is none (as in EventSource).
 */
export function sseReader(onEvent: (type: string, data: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    const text = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n', start)) {
      sseEvent(text.subarray(start, end + 1), onEvent);
      start = end + 2;
    }
    // A copy, so that a partial event does not hold on to the whole chunk.
    pending = Buffer.from(text.subarray(start));
  };
}

/** One event's lines, each ending with LF. */
function sseEvent(lines: Buffer, onEvent: (type: string, data: Buffer) => void): void {
  let type = 'message';
  const data: Buffer[] = [];
  for (let start = 0, end = lines.indexOf(LF); end >= 0; end = lines.indexOf(LF, start)) {
    const line = lines.subarray(start, end);
    start = end + 1;
    const colon = line.indexOf(':');
    if (colon === 0) continue;
    const field = (colon < 0 ? line : line.subarray(0, colon)).toString('latin1');
    let value = colon < 0 ? Buffer.alloc(0) : line.subarray(colon + 1);
    if (value[0] === 0x20) value = value.subarray(1);
    if (field === 'event') type = value.toString();
    else if (field === 'data') data.push(value);
  }
  if (data.length === 1) onEvent(type, data[0]!);
  else if (data.length > 1)
    onEvent(
      type,
      Buffer.concat(data.flatMap((value, i) => (i === 0 ? [value] : [NEWLINE, value]))),
    );
}
