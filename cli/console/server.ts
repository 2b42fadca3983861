/**
 * The console (README "The console"): a web page on 127.0.0.1 that `npm start` serves next to
 * the local stack, on the same code paths as the command-line tool (`cli/`): the rejected
 * events and why, the redrive workflow, streams, subscriptions and publishing. Server-rendered
 * HTML over node:http, a little JavaScript for the live tail; no build step.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeFailure } from '../errors.ts';
import { resolveTarget } from '../target.ts';
import { readStateFile } from '../../local/state.ts';
import { ConsoleApp, type ConsoleRequest, type Reply, type Route } from './app.ts';
import { errorBox } from './markup.ts';
import { publishRoutes } from './pages/publish.ts';
import { executionRoutes } from './pages/redrive-execution.ts';
import { redriveRoutes } from './pages/redrive.ts';
import { rejectedRoutes } from './pages/rejected.ts';
import { streamRoutes } from './pages/streams.ts';
import { subscriptionRoutes } from './pages/subscriptions.ts';
import { checkFormToken, checkRequest, SECURITY_HEADERS, tokenCookie, newToken, type Refusal } from './security.ts';

export interface ConsoleOptions {
  /** The running local stack's data folder (its state file says where everything is). */
  readonly dataDir: string;
  /** 0 = any free port. @default 0 */
  readonly port?: number;
  /** @default a new random token */
  readonly token?: string;
}

export interface ConsoleServer {
  /** The address to open: the console's origin with this start's token. */
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  /** Close live streams and the server; the target's clients too. */
  stop(): Promise<void>;
}

/** A POST body larger than this is refused (413): JSON Lines of many events fit well within it. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const ASSETS: Readonly<Record<string, { type: string; file: string }>> = {
  '/assets/console.css': { type: 'text/css; charset=utf-8', file: 'console.css' },
  '/assets/console.js': { type: 'text/javascript; charset=utf-8', file: 'console.js' },
};

function readAssets(): Map<string, { type: string; body: Buffer }> {
  return new Map(
    Object.entries(ASSETS).map(([path, asset]) => [
      path,
      { type: asset.type, body: readFileSync(new URL(`./assets/${asset.file}`, import.meta.url)) },
    ]),
  );
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, extra = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra });
  response.end(body);
}

function sendRefusal(response: ServerResponse, refusal: Refusal, port: number): void {
  const message =
    refusal.status === 401
      ? `This console needs this start's token: open the address npm start printed (http://127.0.0.1:${port}/?token=...).`
      : refusal.message;
  send(response, refusal.status, 'text/plain; charset=utf-8', `${message}\n`);
}

async function readForm(request: IncomingMessage): Promise<FormData | 'too large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return 'too large';
    chunks.push(chunk as Buffer);
  }
  // The platform's own form parser (urlencoded and multipart, with uploaded files).
  const contentType = request.headers['content-type'] ?? 'application/x-www-form-urlencoded';
  return new Request('http://console.invalid/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: Buffer.concat(chunks),
  }).formData();
}

function errorPage(app: ConsoleApp, error: unknown): Reply {
  return app.page({ title: 'Error', section: '/rejected', body: errorBox(describeFailure(error)) }, 500);
}

function writeReply(response: ServerResponse, reply: Reply): void {
  if (reply.kind === 'handled') return;
  if (reply.kind === 'redirect') {
    response.writeHead(303, { ...SECURITY_HEADERS, location: reply.location });
    response.end();
    return;
  }
  send(response, reply.status ?? 200, 'text/html; charset=utf-8', reply.body.text);
}

class ConsoleHandler {
  readonly #routes: Map<string, Route>;
  readonly #assets = readAssets();

  public constructor(
    private readonly app: ConsoleApp,
    private readonly port: number,
  ) {
    const all = [
      ...rejectedRoutes,
      ...redriveRoutes,
      ...executionRoutes,
      ...streamRoutes,
      ...subscriptionRoutes,
      ...publishRoutes,
    ];
    this.#routes = new Map(all.map((route) => [`${route.method} ${route.path}`, route]));
  }

  public async handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(incoming.url ?? '/', `http://127.0.0.1:${this.port}`);
    const refusal = checkRequest(incoming, this.port, this.app.token, url);
    if (refusal) return sendRefusal(response, refusal, this.port);
    if (incoming.method === 'GET' && url.pathname === '/') {
      // The entry address: keep the token in a cookie, and leave the token out of the address bar.
      response.writeHead(303, {
        ...SECURITY_HEADERS,
        location: '/rejected',
        'set-cookie': tokenCookie(this.port, this.app.token),
      });
      response.end();
      return;
    }
    const asset = incoming.method === 'GET' ? this.#assets.get(url.pathname) : undefined;
    if (asset) return send(response, 200, asset.type, asset.body);
    const route = this.#routes.get(`${incoming.method} ${url.pathname}`);
    if (!route) return send(response, 404, 'text/plain; charset=utf-8', `No page ${url.pathname}\n`);
    let form: FormData | undefined;
    if (incoming.method === 'POST') {
      const read = await readForm(incoming);
      if (read === 'too large')
        return send(response, 413, 'text/plain; charset=utf-8', `The request is over ${MAX_BODY_BYTES} bytes.\n`);
      const bad = checkFormToken(read, this.app.token);
      if (bad) return sendRefusal(response, bad, this.port);
      form = read;
    }
    const request: ConsoleRequest = { url, form, incoming, response };
    writeReply(response, await route.handle(this.app, request).catch((error: unknown) => errorPage(this.app, error)));
  }
}

function stackLine(dataDir: string): string {
  const state = readStateFile(dataDir);
  if (!state) return 'the local stack';
  return `local stack, ${state.queueMode} queue, ${state.inMemory ? 'in memory' : `data in ${state.dataDir}`}`;
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} is taken: the console cannot listen on it (choose another with --console-port, or 0)`,
            )
          : error,
      ),
    );
    // Loopback only: the console changes data and shows event bodies.
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Serve the console for the running local stack in `dataDir`, on 127.0.0.1.
 *
 * @example
 * ```ts
 * const web = await startConsole({ dataDir: stack.state.dataDir });
 * console.log(`console  ${web.url}`);
 * await web.stop();
 * ```
 */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const targetOptions = { dataDir: options.dataDir };
  const target = await resolveTarget(targetOptions);
  const token = options.token ?? newToken();
  const app = new ConsoleApp(target, targetOptions, token, stackLine(options.dataDir));
  const server = createServer();
  let port: number;
  try {
    port = await listen(server, options.port ?? 0);
  } catch (error) {
    target.close();
    throw error;
  }
  const handler = new ConsoleHandler(app, port);
  server.on('request', (incoming: IncomingMessage, response: ServerResponse) => {
    handler.handle(incoming, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `${describeFailure(error)}\n`);
      else response.end();
    });
  });
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    port,
    token,
    async stop() {
      for (const live of app.liveStreams) live.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      target.close();
    },
  };
}
