/**
 * Socket.IO spoken by hand, for feeding the server what no real client sends: a bare WebSocket
 * (the `ws` package) that does the Engine.IO and Socket.IO handshakes itself, and an Engine.IO
 * long-polling session driven with fetch.
 */
import WebSocket from 'ws';

import { SOCKET_PATH } from '../../protocol/events';
import { Recorder, withDeadline } from './recorder';

export interface RawFrame {
  /** Text frames as strings, binary frames as buffers. */
  data: string | Buffer;
}

const DEADLINE_MS = 3_000;
const isText = (prefix: string) => (frame: RawFrame) =>
  typeof frame.data === 'string' && frame.data.startsWith(prefix);

export class RawSocket {
  readonly frames = new Recorder<RawFrame>();
  /** Resolves with the close code when the connection has closed, whoever closed it. */
  private readonly closed: Promise<{ code: number }>;
  private isClosed = false;
  private nextAckId = 1_000;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString('utf8');
      // Engine.IO v4: the server pings, the client must answer, or it is dropped.
      if (frame === '2') ws.send('3');
      this.frames.push({ data: frame });
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number) => {
        this.isClosed = true;
        resolve({ code });
      });
    });
    // Errors (a refused upgrade, a reset) end in 'close' too; without a listener they would throw.
    ws.on('error', () => undefined);
  }

  /** Opens the WebSocket transport and joins the default namespace (`40` → `40{"sid":...}`). */
  static async connect(baseUrl: string): Promise<{ socket: RawSocket }> {
    const url = `${baseUrl.replace(/^http/, 'ws')}${SOCKET_PATH}/?EIO=4&transport=websocket`;
    const socket = new RawSocket(new WebSocket(url));
    const wait = { timeoutMs: DEADLINE_MS, what: 'the Engine.IO open packet' };
    await socket.frames.waitFor(isText('0{'), wait);
    socket.send('40');
    await socket.frames.waitFor(isText('40{'), { ...wait, what: 'the Socket.IO connect packet' });
    return { socket };
  }

  get open(): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  /** The Socket.IO events (`42[...]`) received from `from` on: name and payload, without the
   * recovery offset that connection state recovery may append. */
  events(from = 0): unknown[][] {
    return this.frames
      .since(from)
      .filter(isText('42['))
      .map((frame) => (JSON.parse((frame.data as string).slice(2)) as unknown[]).slice(0, 2));
  }

  send(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: options.binary ?? typeof data !== 'string' });
  }

  /** An unknown event with an ack id, and its answer: the server keeps per-connection order, so
   * everything it sent before has arrived. The raw `sync()`. */
  async roundTrip(): Promise<unknown> {
    const id = this.nextAckId++;
    const from = this.frames.mark;
    this.send(`42${id}["raw-barrier"]`);
    const prefix = `43${id}[`;
    const answer = await this.frames.waitFor(isText(prefix), {
      from,
      timeoutMs: DEADLINE_MS,
      what: `the ack of raw barrier ${id}`,
    });
    return (JSON.parse((answer.data as string).slice(prefix.length - 1)) as unknown[])[0];
  }

  /** Resolves once the server has closed the connection (or rejects at the deadline). */
  waitClosed(): Promise<{ code: number }> {
    return withDeadline(this.closed, DEADLINE_MS, 'the server to close the raw connection');
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
   * The Engine.IO handshake and, if asked, the join of the default namespace; then it reads
   * until the answer to an unknown event sent after the join is in, so that the welcome has
   * been read, nothing is left queued, and the next GET waits for news.
   */
  static async open(baseUrl: string, joinDefault: boolean): Promise<PollingSession> {
    const response = await fetch(PollingSession.endpoint(baseUrl, 'EIO=4&transport=polling'));
    const body = await response.text();
    if (response.status !== 200 || !body.startsWith('0{')) {
      throw new Error(`polling handshake failed: ${response.status} ${body}`);
    }
    const session = new PollingSession(baseUrl, (JSON.parse(body.slice(1)) as { sid: string }).sid);
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

  /** A GET with nothing queued would be held open until the next ping (25 s): cut it short. */
  get(): Promise<{ status: number; body: string }> {
    return this.request({});
  }

  post(body: string | Buffer, headers: Record<string, string> = {}) {
    return this.request({ method: 'POST', body, headers });
  }

  private async request(init: RequestInit): Promise<{ status: number; body: string }> {
    const response = await fetch(this.url, { ...init, signal: AbortSignal.timeout(DEADLINE_MS) });
    return { status: response.status, body: await response.text() };
  }
}
