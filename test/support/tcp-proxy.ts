/**
 * A tiny TCP proxy (node:net) to put a real network fault between a client and a real server:
 * `cut()` drops every open connection and refuses new ones (or, in 'blackhole' mode, accepts
 * them and never answers), `restore()` forwards again. The server itself keeps running for
 * everyone else.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type CutMode = 'refuse' | 'blackhole';

export interface TcpProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  readonly url: string;
  cut(mode?: CutMode): Promise<void>;
  restore(): Promise<void>;
  /** Connections accepted so far (forwarded or not). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpProxy(
  target: { host: string; port: number },
  scheme = 'http',
): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let mode: 'forward' | CutMode = 'forward';
  let accepted = 0;
  let server: Server | undefined;
  let port = 0;

  function onConnection(client: Socket): void {
    accepted++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (mode === 'blackhole') {
      // Swallow whatever arrives; never answer.
      client.on('data', () => undefined);
      return;
    }
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async function listen(): Promise<void> {
    server = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => {
        server!.off('error', reject);
        resolve();
      });
    });
    port = (server.address() as { port: number }).port;
  }

  async function stopListening(): Promise<void> {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  function dropAll(): void {
    for (const s of open) s.destroy();
    open.clear();
  }

  await listen();

  return {
    get port() {
      return port;
    },
    get url() {
      return `${scheme}://127.0.0.1:${port}`;
    },
    get connections() {
      return accepted;
    },
    async cut(m: CutMode = 'refuse') {
      mode = m;
      dropAll();
      // Refuse: nothing listens on the port any more (ECONNREFUSED), as when a server is down.
      if (m === 'refuse') await stopListening();
    },
    async restore() {
      mode = 'forward';
      dropAll();
      if (!server) await listen();
    },
    async close() {
      mode = 'refuse';
      dropAll();
      await stopListening();
    },
  };
}
