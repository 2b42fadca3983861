/**
 * `npm run newcomer`: the README's "Quick start", done as a new user does it, on a fresh clone.
 *
 * 1. `git clone` of this repository's HEAD (committed work only) into a temporary folder.
 * 2. `npm ci`: by default replaced by a link to this checkout's node_modules (the same
 *    package-lock.json, and minutes faster in CI); `--npm-ci` runs it for real.
 * 3. `npm start` in the clone (default ports and data folder, as the README says), then each
 *    command of the Quick start's "In another terminal" block, in order, on a terminal (util-linux
 *    `script`, so that what is shown is what a user sees), `<ID>` taken from publish's output.
 * 4. Ctrl-C (SIGINT to npm start's process group, as a terminal sends it).
 *
 * It fails on any command that fails, on any output line the README's Quick start transcript
 * (its ```text block) does not allow, on any transcript line that never showed up, and on any
 * process left running from the clone. `npm test` of the Quick start is not run here (CI runs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { PROJECT_ROOT } from '../local/defaults.ts';

const PROJECT = PROJECT_ROOT;
const useNpmCi = process.argv.includes('--npm-ci');
const keep = process.argv.includes('--keep');

/** A command of the transcript and the lines it may print (`…` stands for any text). */
interface Section {
  readonly command: string;
  readonly patterns: string[];
}

/** The README's Quick start: its commands and its transcript. */
function quickStart(): { first: string[]; second: string[]; transcript: Section[] } {
  const readme = readFileSync(join(PROJECT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Quick start');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(([, kind, body]) => ({
    kind: kind!,
    lines: body!.split('\n').filter((line) => line.trim() !== ''),
  }));
  const commands = (lines: readonly string[]) => lines.map((line) => line.replace(/\s+#.*$/, '').trim());
  const bash = blocks.filter((block) => block.kind === 'bash');
  const text = blocks.find((block) => block.kind === 'text');
  if (bash.length < 2 || !text) throw new Error('README Quick start: expected two bash blocks and a text transcript');
  const transcript: Section[] = [];
  for (const line of text.lines) {
    if (line.startsWith('$ ') || line === '^C') transcript.push({ command: line.replace(/^\$ /, ''), patterns: [] });
    else if (transcript.length === 0) throw new Error(`README transcript: ${line} before any command`);
    else transcript.at(-1)!.patterns.push(line);
  }
  return { first: commands(bash[0]!.lines), second: commands(bash[1]!.lines), transcript };
}

function matcher(pattern: string): RegExp {
  const parts = pattern.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`);
}

const ESC = String.fromCharCode(27);
const SPINNER_STEP = new RegExp(`${ESC}\\[1G${ESC}\\[0K`, 'g');
const ANSI_CONTROL = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');

/** What a terminal shows: each line as it stands after its last carriage return, right-trimmed. */
function onScreen(text: string): string[] {
  return text
    .replace(SPINNER_STEP, '\r') // npx's spinner: back to column 1, clear the line
    .replace(ANSI_CONTROL, '')
    .split(/\r?\n/)
    .map((line) => (line.split('\r').at(-1) ?? '').trimEnd())
    .filter((line) => line !== '');
}

const problems: string[] = [];

/** Every line allowed by the section, and every required pattern seen (JSON log lines may or may not come). */
function check(section: Section | undefined, what: string, lines: readonly string[]): void {
  if (!section) {
    problems.push(`the README transcript has no "$ ${what}"`);
    return;
  }
  const matchers = section.patterns.map((pattern) => ({ pattern, regex: matcher(pattern), seen: false }));
  for (const line of lines) {
    const found = matchers.filter((entry) => entry.regex.test(line));
    if (found.length === 0) problems.push(`${what}: a line the README transcript does not allow: ${line}`);
    for (const entry of found) entry.seen = true;
  }
  for (const entry of matchers) {
    if (!entry.seen && !entry.pattern.startsWith('{'))
      problems.push(`${what}: the README transcript shows a line that did not come: ${entry.pattern}`);
  }
}

/** The environment of a new terminal: none of npm's or this project's variables. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_|EVENTSTORE_|POWERTOOLS_|INIT_CWD$|NODE_OPTIONS$|VITEST)/.test(name)) continue;
    env[name] = value;
  }
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(':')
    .filter((dir) => !dir.includes('node_modules'))
    .join(':');
  return env;
}

/** util-linux `script`: runs a command on a pseudo-terminal. */
const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** Run a shell command line on a terminal when `script` is there (else through pipes). */
function onTerminal(line: string, cwd: string, env: NodeJS.ProcessEnv, input = false): ChildProcess {
  const stdio = [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] as const;
  return hasScript
    ? spawn('script', ['-qec', line, '/dev/null'], { cwd, env, stdio: [...stdio], detached: true })
    : spawn('sh', ['-c', line], { cwd, env, stdio: [...stdio], detached: true });
}

/** Ctrl-C: on the terminal, the key itself (the terminal signals npm start's foreground group). */
function ctrlC(child: ChildProcess): void {
  if (hasScript) child.stdin?.write('\x03');
  else process.kill(-child.pid!, 'SIGINT');
}

function collect(child: ChildProcess): { text: () => string; exited: Promise<number | null> } {
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { text: () => text, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

/** The README's local AWS CLI recipe ("Local mode"), when the AWS CLI is installed. */
function awsCliRecipe(): string | undefined {
  if (spawnSync('aws', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const readme = readFileSync(join(PROJECT, 'README.md'), 'utf8');
  const at = readme.indexOf('The AWS CLI recipe above works locally');
  if (at < 0) throw new Error('README Local mode: the local AWS CLI recipe is gone');
  return /```bash\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
}

async function until(probe: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Processes whose command line or working folder is in the clone. */
function processesIn(folder: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // Not ours to read.
      }
      if (line.includes(folder) || cwd.startsWith(folder)) found.push(`${pid} ${line}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function main(): Promise<number> {
  const { first, second, transcript } = quickStart();
  const section = (command: string) => transcript.find((entry) => entry.command === command);
  const root = mkdtempSync(join(tmpdir(), 'eventstore-newcomer-'));
  const clone = join(root, 'dynamodb-sqs-event-store');
  const env = userEnv();
  let start: ChildProcess | undefined;
  try {
    console.log(`newcomer: git clone into ${clone}`);
    const cloned = spawnSync('git', ['clone', '--quiet', PROJECT, clone], { stdio: 'inherit' });
    if (cloned.status !== 0) throw new Error('git clone failed');
    for (const command of first.filter((line) => line !== 'npm start')) {
      if (command === 'npm ci' && !useNpmCi) {
        console.log('newcomer: npm ci replaced by a link to the checkout node_modules (--npm-ci runs it)');
        symlinkSync(join(PROJECT, 'node_modules'), join(clone, 'node_modules'));
        continue;
      }
      console.log(`newcomer: ${command}`);
      if (spawnSync('sh', ['-c', command], { cwd: clone, env, stdio: 'inherit' }).status !== 0)
        throw new Error(`${command} failed`);
    }

    console.log('newcomer: npm start');
    start = onTerminal('npm start', clone, env, true);
    const started = collect(start);
    await until(() => started.text().includes('Press Ctrl-C to stop.'), 'npm start to be ready', 180_000);
    let id = '';
    for (const command of second) {
      const line = command.replace('<ID>', id);
      console.log(`newcomer: ${line}`);
      const run = collect(onTerminal(line, clone, env));
      const code = await run.exited;
      const lines = onScreen(run.text());
      for (const shown of lines) console.log(`  | ${shown}`);
      if (code !== 0) problems.push(`${line}: exit code ${code}`);
      check(section(command), command, lines);
      id = /next: npx eventstore read (\S+)/.exec(run.text())?.[1] ?? id;
    }

    const recipe = awsCliRecipe();
    if (recipe) {
      console.log('newcomer: the local AWS CLI recipe of README "Local mode"');
      const run = collect(spawn('bash', ['-ec', recipe], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'] }));
      const code = await run.exited;
      for (const shown of onScreen(run.text())) console.log(`  | ${shown}`);
      if (code !== 0) problems.push(`the local AWS CLI recipe: exit code ${code}`);
    } else console.log('newcomer: no AWS CLI here: the local AWS CLI recipe is not tried');

    console.log('newcomer: Ctrl-C');
    const atCtrlC = started.text().length;
    ctrlC(start);
    const timer = setTimeout(() => problems.push('npm start: still running 30 s after Ctrl-C'), 30_000);
    const code = await started.exited;
    clearTimeout(timer);
    const all = onScreen(started.text());
    const beforeCtrlC = onScreen(started.text().slice(0, atCtrlC));
    for (const shown of all) console.log(`  | ${shown}`);
    check(section('npm start'), 'npm start', beforeCtrlC);
    // The terminal echoes the key as ^C.
    check(
      section('^C'),
      'Ctrl-C',
      all.slice(beforeCtrlC.length).filter((line) => line !== '^C'),
    );
    // npm ends with 130 (interrupted) when its script was; the script itself says "Stopped.".
    if (code !== 0 && code !== 130) problems.push(`npm start: exit code ${code} after Ctrl-C`);
    start = undefined;

    let left: string[] = [];
    await until(() => (left = processesIn(clone)).length === 0, 'no process left', 10_000).catch(() =>
      problems.push(`left running: ${left.join('; ')}`),
    );
  } finally {
    if (start?.pid !== undefined) process.kill(-start.pid, 'SIGKILL');
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
  for (const problem of problems) console.error(`newcomer: ${problem}`);
  console.log(problems.length === 0 ? 'newcomer: the Quick start works as the README says' : 'newcomer: FAILED');
  return problems.length === 0 ? 0 : 1;
}

if (!existsSync('/proc')) {
  console.error('newcomer: needs Linux (/proc) to look for processes left running');
  process.exitCode = 1;
} else {
  process.exitCode = await main().catch((error: unknown) => {
    console.error(`newcomer: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  });
}
