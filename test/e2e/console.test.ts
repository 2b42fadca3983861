import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type Server,
} from 'node:http';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../local/defaults.ts';
import { waitUntil } from '../../local/engines/ports.ts';
import { launchConsoleBrowser, REBOUND_HOST, type ConsoleBrowser } from './console-browser.ts';
import { messagesIn, stackClients, StackProcess } from './support.ts';

const BIG = '12345678901234567890';
const PRECISE = '0.1000000000000000055511151231257827';

/** A cell's text as the user reads it (white space collapsed). */
async function text(locator: Locator): Promise<string> {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

/** An event's JSON text, written by hand so that its number literals are exactly these. */
function eventText(id: string, eventId: string, data: string, emitterType = true): string {
  return (
    `{"Timestamp":1596719980,"EventType":"ORDER_PLACED","ID":"${id}","EmitterId":"checkout"` +
    `${emitterType ? ',"EmitterType":"SYSTEM"' : ''},"EventId":"${eventId}","Data":${data}}`
  );
}

/** The console's address from the start banner (`console  http://127.0.0.1:PORT/?token=...`). */
function consoleUrl(stdout: string): URL {
  const found = /console\s+(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(stdout);
  if (!found) throw new Error(`no console address in the banner:\n${stdout}`);
  return new URL(found[1]!);
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request to the console, with exactly these headers (node:http lets a test set Host and Origin). */
function call(
  url: URL,
  options: { method?: string; headers?: OutgoingHttpHeaders; form?: Record<string, string> } = {},
) {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  return new Promise<Answer>((resolve, reject) => {
    const request = httpRequest(
      url,
      {
        method: options.method ?? 'GET',
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          ...options.headers,
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** The error box of a console page, as text. */
function errorOf(page: string): string | undefined {
  const found = /<p class="error" role="alert">([^<]*)<\/p>/.exec(page);
  return found?.[1]
    ?.replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/**
 * The console (cli/console/) on a local stack started as `npm start` starts it, driven in
 * Chromium as a user would: publish, see the rejections, dry run, redrive, read the stream,
 * resume a parked subscription stream, follow the live tail; and refused to other pages.
 */
describe('the console in a real browser (npm start, standard queue)', () => {
  const stack = new StackProcess();
  let browser: ConsoleBrowser;
  let entry: URL;
  let origin: string;
  let dynamo: DynamoDBClient;
  let sqs: SQSClient;
  let sfn: SFNClient;

  beforeAll(async () => {
    const state = await stack.start(['--concurrency', '2']);
    entry = consoleUrl(stack.child!.stdout);
    origin = entry.origin;
    ({ dynamo, sqs } = stackClients(state));
    sfn = new SFNClient({ endpoint: state.sfnEndpoint, region: state.region, credentials: LOCAL_CREDENTIALS });
    browser = await launchConsoleBrowser();
    // The address from the banner: the token goes into a cookie, the address bar keeps no token.
    await browser.page.goto(entry.href);
    expect(browser.page.url()).toBe(`${origin}/rejected`);
  });

  afterAll(async () => {
    await browser?.close();
    dynamo?.destroy();
    sqs?.destroy();
    sfn?.destroy();
    await stack.stop();
  });

  const goto = async (page: Page, path: string) => {
    const response = await page.goto(`${origin}${path}`);
    expect(response?.status()).toBe(200);
  };

  /** Reload `path` until `ready` holds (pages that show state changed by the stack's workers); the page's text when it never does. */
  const reloadUntil = (page: Page, path: string, ready: () => Promise<boolean>, what: string) =>
    waitUntil(
      async () => {
        await goto(page, path);
        return ready();
      },
      what,
      90_000,
      500,
    ).catch(async (error: unknown) => {
      process.stderr.write(`npm start said:\n${stack.child?.stderr.slice(-5000)}\n`);
      const shown = await page
        .locator('main')
        .innerText()
        .catch(() => '(no page)');
      throw new Error(`${error instanceof Error ? error.message : String(error)}; the page said:\n${shown}`);
    });

  it(
    'publish -> rejected -> dry run -> redrive -> the stream shows the fixed events, numbers as sent',
    { timeout: 300_000 },
    async () => {
      const { page } = browser;
      const prefix = `shop-${Date.now().toString(36)}`;
      const bodies = [
        eventText(`${prefix}-1`, `${prefix}-e1`, `{"amount":${BIG}}`),
        eventText(`${prefix}-1`, `${prefix}-e2`, `{"ratio":${PRECISE}}`, false),
        eventText(`${prefix}-2`, `${prefix}-e3`, '{"price":1.50}', false),
      ];

      // Act: publish three events as JSON Lines; one valid, two without EmitterType.
      await goto(page, '/publish');
      await page.locator('textarea[name=events]').fill(bodies.join('\n'));
      await page.getByRole('button', { name: 'Publish' }).click();
      const outcomes = page.locator('table[aria-label=outcomes] tbody tr');
      await page.locator('table[aria-label=outcomes] .outcome.pending').first().waitFor({ state: 'detached' });

      // Assess: each event's own outcome, and its body exactly as sent.
      expect(await text(outcomes.nth(0).locator('td').nth(2))).toBe('stored as version 1');
      for (const row of [1, 2]) {
        expect(await text(outcomes.nth(row).locator('td').nth(2))).toBe(
          'rejected: SchemaViolation EmitterType: required field is missing',
        );
      }
      expect(await outcomes.locator('pre').allTextContents()).toEqual(bodies);
      await browser.screenshot(page, 'publish');

      // The Rejected page: grouped by reason, bodies exactly as in the queue (1.50 and all 34 digits).
      await goto(page, '/rejected');
      const group = page.locator('section[data-reason=SchemaViolation]');
      expect(await text(group.locator('h2'))).toBe('SchemaViolation 2');
      expect((await group.locator('pre').allTextContents()).sort()).toEqual([bodies[1], bodies[2]].sort());
      expect(await group.locator('tbody tr td:nth-child(5)').allTextContents()).toEqual([
        'EmitterType: required field is missing',
        'EmitterType: required field is missing',
      ]);
      await browser.screenshot(page, 'rejected');

      // A dry run with the fix: the report as the workflow returns it, and the bodies it would send.
      await goto(page, '/redrive');
      await page.locator('textarea[name=filter]').fill('EmitterId=checkout');
      await page.locator('textarea[name=set]').fill('EmitterType=SYSTEM');
      expect(await page.locator('input[name=dryRun]').isChecked()).toBe(true);
      await page.getByRole('button', { name: 'Start the redrive' }).click();
      await page.locator('[data-status=SUCCEEDED]').waitFor();
      expect(await text(page.locator('h1'))).toBe('Redrive dry run');
      expect(await text(page.locator('dt:text-is("wouldRedrive") + dd'))).toBe('2');
      const wouldSend = await page.locator('table[aria-label="would send"] pre').allTextContents();
      // The fix adds the field at the end; every other byte stays as sent.
      expect(wouldSend.sort()).toEqual(
        [bodies[1]!, bodies[2]!].map((body) => `${body.slice(0, -1)},"EmitterType":"SYSTEM"}`).sort(),
      );
      expect(await messagesIn(sqs, stack.state.deadLetterQueueUrl)).toBe(2);
      await browser.screenshot(page, 'redrive-dry-run');

      // The real run, with the same input.
      await page.getByRole('button', { name: /Run it for real/ }).click();
      await page.locator('[data-status=SUCCEEDED]').waitFor();
      expect(await text(page.locator('h1'))).toBe('Redrive run');
      expect(await text(page.locator('dt:text-is("redriven") + dd'))).toBe('2');
      await browser.screenshot(page, 'redrive-run');
      await goto(page, '/redrive');
      expect(await page.locator('table[aria-label="past runs"] tbody tr').count()).toBe(2);

      // The stream: both events, in version order, the fixed one with its digits as sent.
      const view = `/streams/view?id=${prefix}-1`;
      await reloadUntil(
        page,
        view,
        async () => (await page.locator('table[aria-label=events] tbody tr').count()) === 2,
        'the redriven event in the stream',
      );
      const rows = page.locator('table[aria-label=events] tbody tr');
      expect(await text(rows.nth(0).locator('td').nth(0))).toBe('1');
      expect(await rows.nth(0).locator('pre').textContent()).toBe(`{\n  "amount": ${BIG}\n}`);
      expect(await text(rows.nth(1).locator('td').nth(0))).toBe('2');
      expect(await text(rows.nth(1).locator('td').nth(3))).toBe('SYSTEM');
      expect(await rows.nth(1).locator('pre').textContent()).toBe(`{\n  "ratio": ${PRECISE}\n}`);
      await browser.screenshot(page, 'stream');
      await goto(page, `/streams?q=${prefix}`);
      expect(await page.locator('table[aria-label=streams] tbody tr').allInnerTexts()).toEqual([
        `${prefix}-1\t2`,
        `${prefix}-2\t1`,
      ]);
      await browser.screenshot(page, 'streams');
      await reloadUntil(page, '/rejected', () => page.locator('.empty').isVisible(), 'an empty dead-letter queue');
    },
  );

  it(
    'groups: publish two groups, one stored at versions 1 to 3, one rejected; a dry run with an Events.1 fix; the stream shows the Group column',
    { timeout: 300_000 },
    async () => {
      const { page } = browser;
      const prefix = `grouped-${Date.now().toString(36)}`;
      const member = (type: string, emitterType = true) =>
        `{"Timestamp":1596719980,"EventType":"${type}","EmitterId":"checkout"${emitterType ? ',"EmitterType":"SYSTEM"' : ''},"Data":{"price":1.50}}`;
      const stored = `{"ID":"${prefix}-1","Events":[${member('ORDER_PLACED')},${member('PAYMENT_RESERVED')},${member('STOCK_RESERVED')}]}`;
      const rejected = `{"ID":"${prefix}-2","Events":[${member('ORDER_PLACED')},${member('PAYMENT_RESERVED', false)}]}`;

      // Act: publish both as JSON Lines
      await goto(page, '/publish');
      await page.locator('textarea[name=events]').fill(`${stored}\n${rejected}`);
      await page.getByRole('button', { name: 'Publish' }).click();
      const outcomes = page.locator('table[aria-label=outcomes] tbody tr');
      await page.locator('table[aria-label=outcomes] .outcome.pending').first().waitFor({ state: 'detached' });

      // Assess: one outcome per group, with its versions, or the event that made it fail
      expect(await text(page.locator('.notice'))).toContain('Sent 2 of 2 message(s) (5 events)');
      expect(await text(outcomes.nth(0).locator('td').nth(2))).toBe('stored as versions 1 to 3 (a group of 3)');
      expect(await text(outcomes.nth(1).locator('td').nth(2))).toBe(
        'rejected: SchemaViolation Events[1].EmitterType: required field is missing',
      );
      expect(await outcomes.locator('pre').allTextContents()).toEqual([stored, rejected]);

      // A dry run that fixes the second event of the rejected group: the body it would send
      await goto(page, '/redrive');
      await page.locator('textarea[name=filter]').fill(`ID=${prefix}-2`);
      await page.locator('textarea[name=set]').fill('Events.1.EmitterType=SYSTEM');
      await page.getByRole('button', { name: 'Start the redrive' }).click();
      await page.locator('[data-status=SUCCEEDED]').waitFor();
      expect(await text(page.locator('dt:text-is("wouldRedrive") + dd'))).toBe('1');
      expect(await page.locator('table[aria-label="would send"] pre').allTextContents()).toEqual([
        rejected.replace(
          member('PAYMENT_RESERVED', false),
          `${member('PAYMENT_RESERVED', false).slice(0, -1)},"EmitterType":"SYSTEM"}`,
        ),
      ]);
      await page.getByRole('button', { name: /Run it for real/ }).click();
      await page.locator('[data-status=SUCCEEDED]').waitFor();
      expect(await text(page.locator('dt:text-is("redriven") + dd'))).toBe('1');

      // The streams: the Group column says which events were written together
      await reloadUntil(
        page,
        `/streams/view?id=${prefix}-2`,
        async () => (await page.locator('table[aria-label=events] tbody tr').count()) === 2,
        'the redriven group in its stream',
      );
      await goto(page, `/streams/view?id=${prefix}-1`);
      const rows = page.locator('table[aria-label=events] tbody tr');
      expect(await page.locator('table[aria-label=events] thead th').allInnerTexts()).toEqual([
        'Version',
        'Group',
        'EventType',
        'Timestamp',
        'EmitterType',
        'EmitterId',
        'RecordedAt',
        'EventId',
        'Data',
      ]);
      expect(await rows.locator('td:nth-child(2)').allInnerTexts()).toEqual(['1/3', '2/3', '3/3']);
      expect(await rows.locator('td:nth-child(3)').allInnerTexts()).toEqual([
        'ORDER_PLACED',
        'PAYMENT_RESERVED',
        'STOCK_RESERVED',
      ]);
    },
  );

  it(
    'a stream parked by a failing projection is resumed from the Subscriptions page',
    { timeout: 300_000 },
    async () => {
      const { page } = browser;
      const subscription = stack.state.subscriptions![0]!;
      const readModel = subscription.tables['READ_MODEL_TABLE_NAME']!;
      const id = `parked-${Date.now().toString(36)}`;
      const summaryOf = async (stream: string) =>
        (
          await dynamo.send(
            new GetItemCommand({ TableName: readModel, Key: { ID: { S: stream } }, ConsistentRead: true }),
          )
        ).Item;
      // The subscription's live path follows the table's stream (README "Subscriptions"):
      // send to fresh streams until one reaches the read model, so the live path is known to run.
      let warmUps = 0;
      await waitUntil(
        async () => {
          warmUps += 1;
          await stack.cli(['publish', '-'], eventText(`${id}-warm-${warmUps}`, 'w', '{"n":1}'));
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          return (await summaryOf(`${id}-warm-${warmUps}`)) !== undefined;
        },
        'the subscription to follow live events',
        90_000,
        0,
      );

      // Prepare: the projection's table disappears, so its writes fail and the stream parks.
      const { Table: table } = await dynamo.send(new DescribeTableCommand({ TableName: readModel }));
      await dynamo.send(new DeleteTableCommand({ TableName: readModel }));
      const sent = await stack.cli(
        ['publish', '-'],
        [eventText(id, `${id}-a`, '{"n":1}'), eventText(id, `${id}-b`, '{"n":2}')].join('\n'),
      );
      expect(sent.code).toBe(0);
      const parked = page.locator(`table[aria-label="parked streams of ${subscription.name}"] tbody tr`);
      await reloadUntil(page, '/subscriptions', async () => (await parked.count()) === 1, 'the stream to park');
      expect(await text(parked.locator('td').nth(0))).toBe(id);
      expect(await text(parked.locator('td').nth(1))).toBe('1');
      expect(await text(parked.locator('td').nth(4))).toContain('ResourceNotFoundException');
      await browser.screenshot(page, 'subscriptions');

      // Act: the table is back; resume, confirm.
      await dynamo.send(
        new CreateTableCommand({
          TableName: readModel,
          KeySchema: table!.KeySchema,
          AttributeDefinitions: table!.AttributeDefinitions,
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      await parked.getByRole('button', { name: 'Resume...' }).click();
      expect(await text(page.locator('.confirm'))).toContain(`Resume stream ${id} of ${subscription.name}?`);
      await page.getByRole('button', { name: 'Yes, resume' }).click();
      expect(await text(page.locator('.notice'))).toBe(
        `resume asked for ${id} of ${subscription.name}; the replay worker picks it up within its schedule (local: a second)`,
      );

      // Assess: nothing parked, and the read model has both events of the stream.
      await reloadUntil(
        page,
        '/subscriptions',
        async () => (await parked.count()) === 0 && (await summaryOf(id))?.['LastVersion']?.N === '2',
        'the resumed stream to be delivered',
      );
      expect(await summaryOf(id)).toMatchObject({ Events: { N: '2' }, LastVersion: { N: '2' } });
    },
  );

  it('reads a stream 50 events a page, in version order', { timeout: 180_000 }, async () => {
    // Prepare: 55 events of one stream.
    const { page } = browser;
    const prefix = `pages-${Date.now().toString(36)}`;
    const sent = await stack.cli(['publish', '--generate', '55', '--streams', '1', '--stream-prefix', prefix]);
    expect(sent.code).toBe(0);
    const versions = () => page.locator('table[aria-label=events] tbody tr td:first-child').allInnerTexts();
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

    // Act and assess: the first page, then the next.
    await reloadUntil(
      page,
      `/streams/view?id=${prefix}-1`,
      async () => (await page.locator('.pager').first().innerText()).includes('of 55'),
      'all 55 events stored',
    );
    expect(await versions()).toEqual(range(1, 50));
    await page.getByRole('link', { name: 'next page' }).first().click();
    await page.waitForURL(/from=51$/);
    expect(await versions()).toEqual(range(51, 55));
    expect(await text(page.locator('.pager').first())).toBe('previous page versions 51 to 55 of 55');
  });

  it('the live tail shows events as they are stored', { timeout: 180_000 }, async () => {
    const { page } = browser;
    await goto(page, '/streams/tail');
    await page.locator('#tail-status:text("Following")').waitFor();
    const id = `tail-${Date.now().toString(36)}`;
    const rows = page.locator('table[aria-label="live tail"] tbody tr');
    // The tail starts at the stream's newest record once its poller runs: send until one shows.
    let sent = 0;
    await waitUntil(
      async () => {
        if ((await rows.count()) > 0) return true;
        sent += 1;
        await stack.cli(['publish', '-'], eventText(id, `${id}-${sent}`, `{"n":${BIG}}`));
        return false;
      },
      'an event in the live tail',
      90_000,
      1_000,
    );
    expect(await text(rows.first().locator('td').nth(1))).toBe(id);
    // An event sent alone: its Group cell is empty
    expect(await text(rows.first().locator('td').nth(3))).toBe('');
    expect(await text(rows.first().locator('td').nth(5))).toBe(`{"n":${BIG}}`);
    await browser.screenshot(page, 'tail');
  });

  it(
    'refuses another site: a form posted from another origin, a rebound host name, a cross-origin read',
    { timeout: 180_000 },
    async () => {
      const { context } = browser;
      const executions = async () =>
        (await sfn.send(new ListExecutionsCommand({ stateMachineArn: stack.state.stateMachineArn }))).executions
          ?.length;
      const before = await executions();
      // Prepare: a page on another port of 127.0.0.1 (the same site, so the browser sends the
      // console's cookie with its requests) that posts a redrive as soon as it loads.
      const attack = `<form id="f" method="post" action="${origin}/redrive"><input name="token" value="guess"><input name="set" value="EmitterType=EVIL"><input name="dryRun" value="off"></form><script>document.getElementById('f').submit()</script>`;
      const evil: Server = createServer((request, response) => {
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end(request.url === '/post' ? attack : '<p>nothing here</p>');
      });
      await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
      const evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
      const attacker = await context.newPage();
      try {
        // Act and assess: the posted form is refused by its Origin.
        const refused = attacker.waitForResponse((response) => response.url() === `${origin}/redrive`);
        await attacker.goto(`${evilOrigin}/post`);
        const response = await refused;
        expect(response.status()).toBe(403);
        expect(await response.text()).toBe(
          `Refused: a change must come from the console's own page (Origin "${evilOrigin}", expected "${origin}").\n`,
        );

        // A script of that page cannot read the console either (no CORS headers).
        await attacker.goto(`${evilOrigin}/read`);
        const read = await attacker.evaluate(async (url) => {
          try {
            return (await (await fetch(url, { credentials: 'include' })).text()).slice(0, 20);
          } catch (error) {
            return `blocked: ${String(error)}`;
          }
        }, `${origin}/rejected`);
        expect(read).toMatch(/^blocked: TypeError/);

        // DNS rebinding: a name that resolves to 127.0.0.1 is not the console's name.
        const rebound = await attacker.goto(`http://${REBOUND_HOST}:${new URL(origin).port}/rejected`);
        expect(rebound?.status()).toBe(421);
      } finally {
        await attacker.close();
        evil.closeAllConnections();
        await new Promise((resolve) => evil.close(resolve));
      }
      // Nothing ran.
      expect(await executions()).toBe(before);
    },
  );
  it(
    'answers only on 127.0.0.1, only to its own name, only with the token; a change needs its Origin and the form token',
    { timeout: 120_000 },
    async () => {
      // Prepare: the cookie the entry address sets.
      const entered = await call(entry);
      expect(entered.status).toBe(303);
      expect(entered.headers.location).toBe('/rejected');
      const cookie = String(entered.headers['set-cookie']).split(';')[0]!;
      const token = entry.searchParams.get('token')!;
      const page = new URL('/publish', origin);
      const event = eventText(`http-${Date.now().toString(36)}`, 'h1', '{"n":1}');

      // Act and assess: reads.
      expect((await call(page)).status).toBe(401);
      expect((await call(page, { headers: { cookie: `${cookie}x` } })).status).toBe(401);
      expect((await call(page, { headers: { cookie } })).status).toBe(200);
      expect((await call(new URL(`/publish?token=${token}`, origin))).status).toBe(401);
      const rebound = await call(page, { headers: { cookie, host: `evil.example:${new URL(origin).port}` } });
      expect(rebound.status).toBe(421);
      expect(rebound.body).toBe(
        `This console answers only at ${origin}/ (the request named host "evil.example:${new URL(origin).port}").\n`,
      );
      expect((await call(page, { headers: { cookie, host: `localhost:${new URL(origin).port}` } })).status).toBe(200);

      // Changes: the Origin must be the console's, and the form must carry the token.
      const post = (headers: OutgoingHttpHeaders, form: Record<string, string>) =>
        call(page, { method: 'POST', headers: { cookie, ...headers }, form });
      const noOrigin = await post({}, { token, events: event });
      expect([noOrigin.status, noOrigin.body]).toEqual([
        403,
        `Refused: a change must come from the console's own page (Origin missing, expected "${origin}").\n`,
      ]);
      expect((await post({ origin: 'http://evil.example' }, { token, events: event })).status).toBe(403);
      expect((await post({ origin, 'sec-fetch-site': 'cross-site' }, { token, events: event })).status).toBe(403);
      const noToken = await post({ origin }, { events: event });
      expect([noToken.status, noToken.body]).toEqual([
        403,
        "Refused: the form does not carry this start's token; reload the page and try again.\n",
      ]);
      expect((await post({ origin }, { token: `${token.slice(0, -1)}x`, events: event })).status).toBe(403);
      expect((await post({ origin }, { token, events: event })).status).toBe(303);

      // Every answer forbids framing and other origins' scripts.
      const answer = await call(page, { headers: { cookie } });
      expect(answer.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(answer.headers['x-frame-options']).toBe('DENY');

      // Loopback only: the console's port is closed on this machine's other addresses.
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((address) => address && !address.internal && address.family === 'IPv4');
      for (const address of others) {
        await expect(
          call(new URL(`http://${address!.address}:${new URL(origin).port}/rejected`)),
        ).rejects.toMatchObject({
          code: 'ECONNREFUSED',
        });
      }
    },
  );

  it('bad input gets the same message as the CLI gives for it', { timeout: 180_000 }, async () => {
    // Prepare
    const cookie = String((await call(entry)).headers['set-cookie']).split(';')[0]!;
    const token = entry.searchParams.get('token')!;
    const post = async (path: string, form: Record<string, string>) => {
      const answer = await call(new URL(path, origin), {
        method: 'POST',
        headers: { cookie, origin },
        form: { token, ...form },
      });
      expect(answer.status).toBe(400);
      return errorOf(answer.body);
    };
    const cliError = async (args: string[], input?: string) => {
      const result = await stack.cli(args, input);
      expect(result.code).toBe(1);
      return result.stderr.replace(/^eventstore: /, '').trimEnd();
    };

    // Act and assess: publish, redrive, subscriptions.
    const notArray = '[{"ID":"a"},';
    expect(await post('/publish', { events: notArray })).toBe(await cliError(['publish', '-'], notArray));
    expect(await post('/publish', { events: '  ' })).toBe(
      'nothing to publish: paste events (one JSON object per line, or a JSON array) or choose a file',
    );
    expect(await post('/redrive', { set: 'EmitterType' })).toBe(await cliError(['redrive', '--set', 'EmitterType']));
    expect(await post('/redrive', { filter: '=x' })).toBe(await cliError(['redrive', '--filter', '=x']));
    expect(await post('/redrive', { max: '0' })).toBe('maximum must be an integer >= 1');
    const name = stack.state.subscriptions![0]!.name;
    expect(await post('/subscriptions/resume', { subscription: name, id: 'never-parked', confirm: 'yes' })).toBe(
      await cliError(['subscriptions', 'resume', name, 'never-parked']),
    );
    expect(await post('/subscriptions/reset', { subscription: 'nope', confirm: 'yes' })).toBe(
      await cliError(['subscriptions', 'reset', 'nope', '--yes']),
    );
  });
});

describe('npm start --no-console', () => {
  const stack = new StackProcess();

  afterAll(async () => {
    await stack.stop();
  });

  it('serves no console, and says so in the banner', { timeout: 180_000 }, async () => {
    // Act
    await stack.start(['--no-console', '--concurrency', '0']);

    // Assess
    expect(stack.child!.stdout).toMatch(/^ {2}console {9}off \(--no-console\)$/m);
    expect(stack.child!.stdout).not.toContain('?token=');
  });
});
