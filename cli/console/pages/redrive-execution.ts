/**
 * One redrive run: its status and progress while it runs, its report exactly as the workflow
 * returns it, its input, and its history, all from the Step Functions API (DescribeExecution,
 * GetExecutionHistory) that the local stack serves as AWS does. After a dry run: what it would
 * send, and the button that runs the same input for real.
 */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type DescribeExecutionCommandOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { redriveResult } from '../../redrive.ts';
import type { ConsoleApp, ConsoleRequest, Reply, Route } from '../app.ts';
import { codeBlock, emptyNote, errorBox, markup, jsonView, table, type Html } from '../markup.ts';
import { streamLink } from './rejected.ts';
import { hiddenForm, type PreviewEntry, type RedriveForm } from './redrive.ts';

const HISTORY_PAGE = 100;

/** Every history event of an execution (GetExecutionHistory, page by page). */
async function allHistory(app: ConsoleApp, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await app.target.sfn.send(
      new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, ...(nextToken ? { nextToken } : {}) }),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

function stateName(event: HistoryEvent | undefined): string {
  return event?.stateEnteredEventDetails?.name ?? event?.stateExitedEventDetails?.name ?? '';
}

function progress(described: DescribeExecutionCommandOutput, history: readonly HistoryEvent[]): Html {
  const entered = history.filter((event) => event.stateEnteredEventDetails);
  const seconds = ((Date.now() - (described.startDate?.getTime() ?? Date.now())) / 1000).toFixed(0);
  return markup`<p class="progress" role="status">
    Running for ${seconds} s: ${history.length} history events so far; now in state
    <code>${stateName(entered.at(-1))}</code>. This page reloads until the run ends.
  </p>`;
}

function historyTable(history: readonly HistoryEvent[], from: number, arn: string): Html {
  const shown = history.slice(from, from + HISTORY_PAGE);
  const link = (start: number, text: string) =>
    markup`<a href="/redrive/execution?arn=${encodeURIComponent(arn)}&amp;history=${String(start)}#history">${text}</a>`;
  return markup`<h2 id="history">History <span class="count">${history.length}</span></h2>
    ${table(
      ['#', 'Type', 'State', 'Time'],
      shown.map((event) => [
        String(event.id ?? ''),
        event.type ?? '',
        stateName(event),
        event.timestamp?.toISOString() ?? '',
      ]),
      'history',
    )}
    <p class="pager">
      ${from > 0 ? link(Math.max(0, from - HISTORY_PAGE), 'newer ...') : ''}
      ${from + HISTORY_PAGE < history.length ? link(from + HISTORY_PAGE, 'later events') : ''}
    </p>`;
}

function previewSection(entries: readonly PreviewEntry[] | undefined): Html {
  if (entries === undefined) return markup``;
  const sent = entries.filter((entry) => entry.send);
  const kept = entries.filter((entry) => !entry.send);
  return markup`<h2>What it would send <span class="count">${sent.length}</span></h2>
    ${
      sent.length === 0
        ? emptyNote('Nothing.')
        : table(
            ['Message', 'Stream', 'Body it would send'],
            sent.map((entry) => [
              markup`<code>${entry.messageId}</code>`,
              streamLink(entry.streamId),
              codeBlock(entry.body ?? '', 'json body'),
            ]),
            'would send',
          )
    }
    <h2>What would stay <span class="count">${kept.length}</span></h2>
    ${
      kept.length === 0
        ? emptyNote('Nothing.')
        : table(
            // eslint-disable-next-line no-restricted-syntax -- a column header, not the metric dimension of core/metrics.ts
            ['Message', 'Stream', 'Reason', 'Detail'],
            kept.map((entry) => [
              markup`<code>${entry.messageId}</code>`,
              streamLink(entry.streamId),
              entry.reason ?? '',
              entry.detail ?? '',
            ]),
            'would stay',
          )
    }
    <p>
      <small
        >The preview applies the workflow's own rules (core/redrive.ts) to the dead letters the console could see before
        the dry run (at most 100).</small
      >
    </p>`;
}

function runForReal(form: RedriveForm | undefined, token: string): Html {
  if (!form) return markup``;
  return markup`<form method="post" action="/redrive" class="inline">
    ${hiddenForm(form, token)}<button type="submit" name="real" value="1">
      Run it for real (same input, not a dry run)
    </button>
  </form>`;
}

function outcome(described: DescribeExecutionCommandOutput): Html {
  const result = redriveResult(described);
  if (!result) return markup``;
  const failure =
    result.status === 'SUCCEEDED'
      ? undefined
      : `The redrive ${result.status.toLowerCase()}: ${result.error ?? ''} ${result.cause ?? ''}`.trim();
  return markup`${errorBox(failure)}
  ${
    result.output !== undefined
      ? markup`<h2>Report</h2>
          ${jsonView(result.output)}
          <details>
            <summary>Output JSON</summary>
            ${codeBlock(JSON.stringify(result.output, null, 2))}
          </details>`
      : ''
  }`;
}

async function executionPage(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const executionArn = request.url.searchParams.get('arn') ?? '';
  const from = Math.max(0, Number(request.url.searchParams.get('history') ?? 0) || 0);
  const described = await app.target.sfn.send(new DescribeExecutionCommand({ executionArn }));
  const history = await allHistory(app, executionArn);
  const running = redriveResult(described) === undefined;
  const remembered = app.recall<{ form: RedriveForm; preview: PreviewEntry[] | undefined }>(`redrive:${executionArn}`);
  const input = JSON.parse(described.input ?? '{}') as { dryRun?: boolean };
  const succeededDryRun = !running && described.status === 'SUCCEEDED' && input.dryRun === true;
  const body = markup`<p>
      Run <code>${described.name ?? ''}</code>:
      <span class="status ${described.status ?? ''}" data-status="${described.status ?? ''}"
        >${described.status ?? ''}</span
      >${input.dryRun ? ' (dry run: nothing changed)' : ''}; started
      ${described.startDate?.toISOString() ?? ''}${described.stopDate ? `, stopped ${described.stopDate.toISOString()}` : ''}.
    </p>
    ${running ? progress(described, history) : outcome(described)}
    ${succeededDryRun ? markup`${previewSection(remembered?.preview)}${runForReal(remembered?.form, app.token)}` : ''}
    <h2>Input</h2>
    ${codeBlock(JSON.stringify(input, null, 2))} ${historyTable(history, from, executionArn)}
    <p><a href="/redrive">Back to the redrive form</a></p>`;
  return app.page({
    title: input.dryRun ? 'Redrive dry run' : 'Redrive run',
    section: '/redrive',
    body,
    ...(running ? { refreshSeconds: 1 } : {}),
  });
}

export const executionRoutes: Route[] = [{ method: 'GET', path: '/redrive/execution', handle: executionPage }];
