/**
 * A real browser for the console's end-to-end tests: Debian's Chromium (`/usr/bin/chromium`,
 * which `.ci/run` installs when it is missing), driven by playwright-core, headless, with a
 * fresh profile that is removed again at the end. Nothing here downloads a browser.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../local/defaults.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** A host name the browser resolves to 127.0.0.1, as a rebinding DNS server would make it. */
export const REBOUND_HOST = 'rebound.test';

export interface ConsoleBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Save a full-page screenshot of `page` as `<name>.png` (docs/console/ when CONSOLE_SCREENSHOTS says so). */
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Where the screenshots go: the folder `CONSOLE_SCREENSHOTS` names (relative to the project:
 * `CONSOLE_SCREENSHOTS=docs/console` refreshes the README's pictures), else a temporary folder,
 * so that an ordinary test run changes no file of the repository.
 */
function screenshotFolder(): { folder: string; temporary: boolean } {
  const chosen = process.env['CONSOLE_SCREENSHOTS'];
  if (chosen) {
    const folder = join(PROJECT_ROOT, chosen);
    mkdirSync(folder, { recursive: true });
    return { folder, temporary: false };
  }
  return { folder: mkdtempSync(join(tmpdir(), 'console-screenshots-')), temporary: true };
}

/** Start Chromium with a fresh profile. @throws when Chromium is not installed, saying how to install it. */
export async function launchConsoleBrowser(): Promise<ConsoleBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the console's browser tests need Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does it)`,
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const shots = screenshotFolder();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Only this test name goes to loopback; every other name stays unresolvable offline.
      `--host-resolver-rules=MAP ${REBOUND_HOST} 127.0.0.1`,
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 120_000,
  });
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async screenshot(shot: Page, name: string) {
      const path = join(shots.folder, `${name}.png`);
      await shot.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      // Closing a persistent context ends the browser process; then its profile goes.
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
      if (shots.temporary) rmSync(shots.folder, { recursive: true, force: true });
    },
  };
}
