/**
 * Streams: find a stream by ID or prefix (the table's keys, as `eventstore subscriptions` reads
 * them), read its events in version order a page at a time (the store's `readStream`, as
 * `eventstore read`), numbers exactly as stored, and the live tail (the table's stream, as
 * `eventstore tail`).
 */
import { DynamoDbEventStore } from '../../../adapters/dynamodb-store.ts';
import { CliError } from '../../errors.ts';
import { integer } from '../../options.ts';
import { eventColumns, groupPosition } from '../../output.ts';
import { streamHeads, tailEvents } from '../../subscriptions.ts';
import type { StoredEvent } from '../../../core/store.ts';
import type { ConsoleApp, ConsoleRequest, Reply, Route } from '../app.ts';
import { codeBlock, emptyNote, errorBox, markup, table, type Html } from '../markup.ts';
import { streamLink } from './rejected.ts';

/** Events per page of a stream. */
export const EVENTS_PER_PAGE = 50;
/** Streams listed for a prefix at most. */
const MAX_LISTED = 200;

function searchForm(query: string): Html {
  return markup`<form method="get" action="/streams" class="inline" role="search">
    <label>Stream ID or prefix <input type="search" name="q" value="${query}" placeholder="order-" /></label>
    <button type="submit">Find</button> <a href="/streams/tail">Live tail</a>
  </form>`;
}

async function findPage(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const query = request.url.searchParams.get('q') ?? '';
  const heads = await streamHeads(app.target);
  const found = [...heads]
    .filter(([id]) => id.startsWith(query))
    .sort(([a], [b]) => (a === query ? -1 : b === query ? 1 : a.localeCompare(b)));
  const list =
    found.length === 0
      ? emptyNote(query === '' ? 'The table holds no events yet.' : `No stream ID starts with "${query}".`)
      : markup`<p>${found.length} stream(s)${found.length > MAX_LISTED ? `, the first ${MAX_LISTED} shown` : ''}.</p>
          ${table(
            ['Stream', 'Version'],
            found.slice(0, MAX_LISTED).map(([id, version]) => [streamLink(id), String(version)]),
            'streams',
          )}`;
  return app.page({ title: 'Streams', section: '/streams', body: markup`${searchForm(query)}${list}` });
}

/**
 * One event's cells; `Data` written by JSON.stringify, which keeps every ExactNumber's digits.
 * With `grouped`, a `Group` cell: `2/3` for an event written in a group, empty for one sent alone.
 */
function eventRow(event: StoredEvent, grouped: boolean): (Html | string)[] {
  return [
    String(event.Version),
    ...(grouped ? [groupPosition(event) ?? ''] : []),
    event.EventType,
    String(event.Timestamp),
    event.EmitterType,
    event.EmitterId,
    event.RecordedAt,
    markup`<code>${event.EventId}</code>`,
    codeBlock(JSON.stringify(event.Data ?? null, null, 2)),
  ];
}

function pager(id: string, from: number, shown: number, head: number): Html {
  const link = (start: number, text: string) =>
    markup`<a href="/streams/view?id=${encodeURIComponent(id)}&amp;from=${String(start)}">${text}</a>`;
  const last = from + shown - 1;
  return markup`<p class="pager">
    ${from > 1 ? link(Math.max(1, from - EVENTS_PER_PAGE), 'previous page') : ''} versions ${String(from)} to
    ${String(last)} of ${String(head)} ${last < head ? link(last + 1, 'next page') : ''}
  </p>`;
}

async function viewPage(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const id = request.url.searchParams.get('id') ?? '';
  const fromText = request.url.searchParams.get('from');
  const fail = (message: string) =>
    app.page({ title: `Stream ${id}`, section: '/streams', body: markup`${searchForm(id)}${errorBox(message)}` }, 404);
  let from = 1;
  try {
    if (fromText !== null) from = integer(1, 'from')(fromText);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
  const store = new DynamoDbEventStore({ client: app.target.dynamo, tableName: app.target.tableName });
  const result = await store.readStream(id, { fromVersion: from, limit: EVENTS_PER_PAGE });
  if (result.version === 0) return fail(new CliError(`stream ${id} has no events in ${app.target.label}`).message);
  // As `eventstore read`: the Group column when the page holds an event of a group.
  const { grouped, headers } = eventColumns(result.events);
  const body = markup`${searchForm('')}
    <p>Stream <code>${id}</code>: version ${String(result.version)}. Numbers are shown exactly as stored.</p>
    ${pager(id, from, result.events.length, result.version)}
    ${table(
      headers,
      result.events.map((event) => eventRow(event, grouped)),
      'events',
    )}
    ${pager(id, from, result.events.length, result.version)}`;
  return app.page({ title: `Stream ${id}`, section: '/streams', body });
}

function tailPage(app: ConsoleApp): Promise<Reply> {
  const body = markup`<p>
      Events as they are stored (the table's stream, from the moment this page opened), newest last.
    </p>
    <p id="tail-status" role="status">Connecting...</p>
    <noscript
      ><p class="error">
        The live tail needs JavaScript; <code>npx eventstore tail</code> does the same in a terminal.
      </p></noscript
    >
    <table id="tail" aria-label="live tail" data-source="/streams/tail/events">
      <thead>
        <tr>
          <th>RecordedAt</th>
          <th>Stream</th>
          <th>Version</th>
          <th>Group</th>
          <th>EventType</th>
          <th>Data</th>
        </tr>
      </thead>
      <tbody></tbody>
    </table>`;
  return Promise.resolve(app.page({ title: 'Live tail', section: '/streams', body }));
}

/** The live tail as Server-Sent Events: one `message` per stored event, until the page goes away or the console stops. */
async function tailEventsStream(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const { response } = request;
  const controller = new AbortController();
  app.liveStreams.add(controller);
  request.incoming.on('close', () => controller.abort());
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.write('event: ready\ndata: {}\n\n');
  try {
    await tailEvents(
      app.target,
      app.targetOptions,
      (event) => {
        if (controller.signal.aborted) return false;
        const row = {
          RecordedAt: event.RecordedAt,
          ID: event.ID,
          Version: event.Version,
          Group: groupPosition(event) ?? '',
          EventType: event.EventType,
          Data: JSON.stringify(event.Data ?? null),
        };
        response.write(`data: ${JSON.stringify(row)}\n\n`);
        return true;
      },
      controller.signal,
    );
  } finally {
    app.liveStreams.delete(controller);
    response.end();
  }
  return { kind: 'handled' };
}

export const streamRoutes: Route[] = [
  { method: 'GET', path: '/streams', handle: findPage },
  { method: 'GET', path: '/streams/view', handle: viewPage },
  { method: 'GET', path: '/streams/tail', handle: tailPage },
  { method: 'GET', path: '/streams/tail/events', handle: tailEventsStream },
];
