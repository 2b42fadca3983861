/**
 * What every page of the console shares: the target (the same `cli/target.ts` object the CLI
 * works on), the token, the page layout, and the replies a route gives.
 */
import { ListExecutionsCommand } from '@aws-sdk/client-sfn';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Target } from '../target.ts';
import type { TargetOptions } from '../options.ts';
import { page, type Html, type PageOptions } from './markup.ts';

/** One request, its form already read and checked (POST) by server.ts. */
export interface ConsoleRequest {
  readonly url: URL;
  /** The POST body as a form (urlencoded or multipart), undefined for a GET. */
  readonly form: FormData | undefined;
  readonly incoming: IncomingMessage;
  readonly response: ServerResponse;
}

/** What a route answers: a page, a redirect (303, after a POST), or the response already written (a live stream). */
export type Reply =
  | { readonly kind: 'html'; readonly status?: number; readonly body: Html }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'handled' };

export interface Route {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  handle(app: ConsoleApp, request: ConsoleRequest): Promise<Reply>;
}

/** The console's shared state for the life of one `npm start`. */
export class ConsoleApp {
  /** Live streams (the tail) to end when the console stops. */
  public readonly liveStreams = new Set<AbortController>();
  /** Set while a redrive is being started here (a double click must not start two runs). */
  public startingRedrive = false;
  /** Things pages keep between requests (publish outcomes, dry-run previews), by key. */
  readonly #memory = new Map<string, unknown>();

  public constructor(
    public readonly target: Target,
    public readonly targetOptions: TargetOptions,
    public readonly token: string,
    public readonly stackLine: string,
  ) {}

  /** A page in the console's layout. */
  public page(options: Omit<PageOptions, 'stackLine'>, status = 200): Reply {
    return { kind: 'html', status, body: page({ ...options, stackLine: this.stackLine }) };
  }

  /** Keep a value (the newest 50 are kept). */
  public remember(key: string, value: unknown): void {
    this.#memory.delete(key);
    this.#memory.set(key, value);
    while (this.#memory.size > 50) this.#memory.delete(this.#memory.keys().next().value!);
  }

  public recall<T>(key: string): T | undefined {
    return this.#memory.get(key) as T | undefined;
  }

  /**
   * Whether a redrive execution is running. Looking at the dead-letter queue receives its
   * messages for a moment (cli/inspect.ts `peekDeadLetters`), which would hide them from a
   * running redrive: the pages that look wait until it has ended.
   */
  public async redriveRunning(): Promise<boolean> {
    const listed = await this.target.sfn.send(
      new ListExecutionsCommand({ stateMachineArn: this.target.stateMachineArn, statusFilter: 'RUNNING' }),
    );
    return (listed.executions ?? []).length > 0;
  }
}

/** A form field as text ('' when absent). */
export function field(form: FormData | undefined, name: string): string {
  const value = form?.get(name);
  return typeof value === 'string' ? value : '';
}

/** A textarea of one entry per line: the non-empty lines, trimmed. */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}
