/**
 * Socket.IO spoken by hand: a bare WebSocket (the `ws` package) that does the Engine.IO and
 * Socket.IO handshakes itself and can then send any frame at all, and an Engine.IO
 * long-polling session driven with fetch. For feeding the server what no real client sends.
 */
import WebSocket from 'ws';

import { SOCKET_PATH } from '../../protocol/events';
import { Recorder, withDeadline } from './recorder';

export interface RawFrame {
  /** Text frames as strings, binary frames as buffers. */
  data: string | Buffer;
  at: number;
}

export interface Closed {
  code: number;
  reason: string;
}

/** The Engine.IO open packet's fields that the tests look at. */
export interface EngineOpen {
  sid: string;
  maxPayload: number;
}

const DEADLINE_MS = 3_000;

export class RawSocket {
  readonly frames = new Recorder<RawFrame>();
  /** Resolves when the connection has closed, whoever closed it. */
  readonly closed: Promise<Closed>;
  private isClosed = false;
  private nextAckId = 1_000;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString('utf8');
      // Engine.IO v4: the server pings, the client must answer, or it is dropped.
      if (frame === '2') ws.send('3');
      this.frames.push({ data: frame, at: performance.now() });
    });
    this.closed = new Promise<Closed>((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    // Errors (a refused upgrade, a reset) end in 'close' too; without a listener they would throw.
    ws.on('error', () => undefined);
  }

  /** Opens the WebSocket transport and resolves with the Engine.IO open packet (`0{...}`). */
  static async open(baseUrl: string): Promise<{ socket: RawSocket; engine: EngineOpen }> {
    const url = `${baseUrl.replace(/^http/, 'ws')}${SOCKET_PATH}/?EIO=4&transport=websocket`;
    const socket = new RawSocket(new WebSocket(url));
    const first = await socket.frames.waitFor(() => true, {
      timeoutMs: DEADLINE_MS,
      what: 'the Engine.IO open packet',
    });
    if (typeof first.data !== 'string' || !first.data.startsWith('0{')) {
      throw new Error(`expected an Engine.IO open packet, got ${String(first.data)}`);
    }
    return { socket, engine: JSON.parse(first.data.slice(1)) as EngineOpen };
  }

  /** Opens, then joins the default namespace (`40` → `40{"sid":...}`); resolves with the sid. */
  static async connect(baseUrl: string): Promise<{ socket: RawSocket; sid: string }> {
    const { socket } = await RawSocket.open(baseUrl);
    const from = socket.frames.mark;
    socket.send('40');
    const connected = await socket.frames.waitFor(
      (frame) => typeof frame.data === 'string' && frame.data.startsWith('40{'),
      { from, timeoutMs: DEADLINE_MS, what: 'the Socket.IO connect packet' },
    );
    const { sid } = JSON.parse((connected.data as string).slice(2)) as { sid: string };
    return { socket, sid };
  }

  get open(): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Text frames that carry a Socket.IO event (`42[...]`) on the default namespace, decoded:
   * the event name and its one payload. Connection state recovery appends the packet's offset
   * as one more argument; `offsets` has those.
   */
  events(from = 0): unknown[][] {
    return this.eventFrames(from).map((args) => args.slice(0, 2));
  }

  /** The recovery offset each event frame carried (undefined when it had none). */
  offsets(from = 0): (string | undefined)[] {
    return this.eventFrames(from).map((args) => {
      const offset = args[2];
      return typeof offset === 'string' ? offset : undefined;
    });
  }

  private eventFrames(from: number): unknown[][] {
    return this.frames
      .since(from)
      .flatMap((frame) =>
        typeof frame.data === 'string' && frame.data.startsWith('42[')
          ? [JSON.parse(frame.data.slice(2)) as unknown[]]
          : [],
      );
  }

  send(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: options.binary ?? typeof data !== 'string' });
  }

  /**
   * Sends an event nobody handles with an ack id and waits for its answer: the server keeps
   * per-connection order, so everything it sent before has arrived. The raw `sync()`.
   */
  async roundTrip(): Promise<unknown> {
    const id = this.nextAckId++;
    const from = this.frames.mark;
    this.send(`42${id}["raw-barrier"]`);
    const prefix = `43${id}[`;
    const answer = await this.frames.waitFor(
      (frame) => typeof frame.data === 'string' && frame.data.startsWith(prefix),
      { from, timeoutMs: DEADLINE_MS, what: `the ack of raw barrier ${id}` },
    );
    return (JSON.parse((answer.data as string).slice(prefix.length - 1)) as unknown[])[0];
  }

  /** Resolves once the server has closed the connection (or rejects at the deadline). */
  waitClosed(ms = DEADLINE_MS): Promise<Closed> {
    return withDeadline(this.closed, ms, 'the server to close the raw connection');
  }

  close(): void {
    if (!this.isClosed) this.ws.terminate();
  }
}

/** An Engine.IO long-polling session, request by request. */
export class PollingSession {
  private constructor(
    readonly baseUrl: string,
    readonly sid: string,
  ) {}

  static endpoint(baseUrl: string, query: string): string {
    return `${baseUrl}${SOCKET_PATH}/?${query}`;
  }

  /**
   * The Engine.IO handshake (a GET without sid) and, if asked, the join of the default
   * namespace; it then reads until the answer to an unknown event sent after the join is in, so
   * that the welcome (whatever it holds) has been read, nothing is left queued, and the next GET
   * waits for news.
   */
  static async open(baseUrl: string, joinDefault: boolean): Promise<PollingSession> {
    const response = await fetch(PollingSession.endpoint(baseUrl, 'EIO=4&transport=polling'));
    const body = await response.text();
    if (response.status !== 200 || !body.startsWith('0{')) {
      throw new Error(`polling handshake failed: ${response.status} ${body}`);
    }
    const { sid } = JSON.parse(body.slice(1)) as { sid: string };
    const session = new PollingSession(baseUrl, sid);
    if (joinDefault) {
      // The event must wait for the join: Socket.IO drops a connection that sends to a
      // namespace it has not joined yet.
      await session.readUntil('40', '40{');
      await session.readUntil('4299["polling-barrier"]', '4399[');
    }
    return session;
  }

  /** Posts `payload`, then polls until a packet starting with `prefix` has come back. */
  private async readUntil(payload: string, prefix: string): Promise<void> {
    const posted = await this.post(payload);
    if (posted.status !== 200) throw new Error(`POST ${payload} failed: ${posted.status}`);
    for (;;) {
      const polled = await this.get();
      if (polled.status !== 200) throw new Error(`poll failed: ${polled.status} ${polled.body}`);
      if (polled.body.split('\x1e').some((packet) => packet.startsWith(prefix))) return;
    }
  }

  get url(): string {
    return PollingSession.endpoint(this.baseUrl, `EIO=4&transport=polling&sid=${this.sid}`);
  }

  async get(): Promise<{ status: number; body: string }> {
    // A GET with nothing queued would be held open until the next ping (25 s): cut it short.
    const response = await fetch(this.url, { signal: AbortSignal.timeout(DEADLINE_MS) });
    return { status: response.status, body: await response.text() };
  }

  async post(
    body: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: string }> {
    const response = await fetch(this.url, {
      method: 'POST',
      body,
      headers,
      signal: AbortSignal.timeout(DEADLINE_MS),
    });
    return { status: response.status, body: await response.text() };
  }
}
