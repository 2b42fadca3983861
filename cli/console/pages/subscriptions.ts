/**
 * Subscriptions: each subscription's replay, lag and parked streams with their error, and
 * resume or reset after a confirmation: the functions `eventstore subscriptions` calls
 * (cli/subscriptions.ts), with the same messages.
 */
import { randomUUID } from 'node:crypto';
import { CliError } from '../../errors.ts';
import {
  findSubscriptions,
  requestResume,
  resetSubscription,
  streamHeads,
  subscriptionNamed,
  subscriptionStatus,
  type SubscriptionStatus,
} from '../../subscriptions.ts';
import { field, type ConsoleApp, type ConsoleRequest, type Reply, type Route } from '../app.ts';
import { emptyNote, errorBox, markup, noticeBox, table, tokenField, type Html } from '../markup.ts';
import { streamLink } from './rejected.ts';

function replayLine(status: SubscriptionStatus): string {
  const replay = status.replay;
  if (!replay) return 'replay pending (not started)';
  const resumes = replay.resume.length ? `, ${replay.resume.length} resume(s) pending` : '';
  return `replay ${replay.status} (${replay.streams} streams, ${replay.events} events${resumes})`;
}

function resumeButton(name: string, streamId: string, token: string): Html {
  return markup`<form method="post" action="/subscriptions/resume" class="inline">
    ${tokenField(token)}<input type="hidden" name="subscription" value="${name}" /><input
      type="hidden"
      name="id"
      value="${streamId}"
    /><button type="submit">Resume...</button>
  </form>`;
}

function statusSection(status: SubscriptionStatus, token: string): Html {
  const parked =
    status.parked.length === 0
      ? emptyNote('No parked streams.')
      : table(
          ['Parked stream', 'At version', 'Since', 'Resume asked', 'Error', ''],
          status.parked.map((p) => [
            streamLink(p.streamId),
            String(p.version),
            p.at,
            p.resumeRequested ? 'yes' : 'no',
            markup`<code>${p.error}</code>`,
            resumeButton(status.name, p.streamId, token),
          ]),
          `parked streams of ${status.name}`,
        );
  return markup`<section class="subscription" data-subscription="${status.name}">
    <h2>${status.name}</h2>
    <dl class="facts">
      <dt>Replay</dt>
      <dd>${replayLine(status)}</dd>
      <dt>Lag</dt>
      <dd data-lag="${String(status.lag)}">
        ${String(status.lag)} version(s) over ${String(status.streamsBehind)} of ${String(status.streams)} stream(s)
      </dd>
      <dt>Parked</dt>
      <dd data-parked="${String(status.parked.length)}">${String(status.parked.length)}</dd>
    </dl>
    ${parked}
    <form method="post" action="/subscriptions/reset" class="inline">
      ${tokenField(token)}<input type="hidden" name="subscription" value="${status.name}" /><button
        type="submit"
        class="danger"
      >
        Reset...
      </button>
    </form>
  </section>`;
}

async function listPage(app: ConsoleApp, notice?: string, error?: string, status = 200): Promise<Reply> {
  const all = await findSubscriptions(app.target, app.targetOptions);
  let body: Html;
  if (all.length === 0) {
    body = emptyNote(`${app.target.label} has no subscriptions.`);
  } else {
    const heads = await streamHeads(app.target);
    const statuses = await Promise.all(all.map((tables) => subscriptionStatus(app.target, tables, heads)));
    body = markup`${statuses.map((each) => statusSection(each, app.token))}`;
  }
  return app.page(
    {
      title: 'Subscriptions',
      section: '/subscriptions',
      body: markup`${noticeBox(notice)}${errorBox(error)}
        <p>
          Lag: versions stored but not delivered, over all streams (README "Subscriptions").
          <a href="/subscriptions">Refresh</a>
        </p>
        ${body}`,
    },
    status,
  );
}

function confirmPage(app: ConsoleApp, action: 'resume' | 'reset', name: string, streamId: string): Reply {
  const what =
    action === 'resume'
      ? markup`Resume stream ${streamLink(streamId)} of <strong>${name}</strong>? The replay worker retries it from its
          parked version (locally within a second).`
      : markup`Reset <strong>${name}</strong>? It forgets what it delivered and replays every event to the projection
          again, from version 1 of every stream (clear its read model yourself).`;
  const body = markup`<p class="confirm">${what}</p>
    <form method="post" action="/subscriptions/${action}" class="inline">
      ${tokenField(app.token)}<input type="hidden" name="subscription" value="${name}" /><input
        type="hidden"
        name="id"
        value="${streamId}"
      /><input type="hidden" name="confirm" value="yes" /><button
        type="submit"
        class="${action === 'reset' ? 'danger' : ''}"
      >
        Yes, ${action}
      </button>
    </form>
    <a href="/subscriptions">Cancel</a>`;
  return app.page({
    title: action === 'resume' ? 'Resume a parked stream' : 'Reset a subscription',
    section: '/subscriptions',
    body,
  });
}

async function act(app: ConsoleApp, request: ConsoleRequest, action: 'resume' | 'reset'): Promise<Reply> {
  const name = field(request.form, 'subscription');
  const streamId = field(request.form, 'id');
  try {
    const tables = subscriptionNamed(await findSubscriptions(app.target, app.targetOptions), name, app.target);
    if (field(request.form, 'confirm') !== 'yes') return confirmPage(app, action, name, streamId);
    let notice: string;
    if (action === 'reset') {
      const removed = await resetSubscription(app.target, tables);
      notice = `${name}: ${removed} checkpoint item(s) reset; the replay starts again from version 1 of every stream`;
    } else {
      const notParked = await requestResume(app.target, tables, [streamId]);
      if (notParked.length > 0) throw new CliError(`not parked in ${name}: ${notParked.join(', ')}`);
      notice = `resume asked for ${streamId} of ${name}; the replay worker picks it up within its schedule (local: a second)`;
    }
    // After the change, a page to reload freely (a reload of the POST would ask to send it again).
    const id = randomUUID();
    app.remember(`notice:${id}`, notice);
    return { kind: 'redirect', location: `/subscriptions?notice=${id}` };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return listPage(app, undefined, error.message, 400);
  }
}

export const subscriptionRoutes: Route[] = [
  {
    method: 'GET',
    path: '/subscriptions',
    handle: (app, request) =>
      listPage(app, app.recall<string>(`notice:${request.url.searchParams.get('notice') ?? ''}`)),
  },
  { method: 'POST', path: '/subscriptions/resume', handle: (app, request) => act(app, request, 'resume') },
  { method: 'POST', path: '/subscriptions/reset', handle: (app, request) => act(app, request, 'reset') },
];
