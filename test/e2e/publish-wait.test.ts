/**
 * `eventstore publish --wait` (README "The command-line tool"): the suggested `read` comes only
 * when what was sent is stored or dead-lettered; on a terminal that is the default, with a bar.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/defaults.ts';
import { Child, StackProcess } from './support.ts';

/** What a terminal shows of `text`: each line as it stands after its last carriage return. */
function onScreen(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.split('\r').at(-1) ?? '')
    .filter((line) => line !== '');
}

describe('publish --wait', () => {
  const stack = new StackProcess();

  afterAll(async () => {
    await stack.stop();
  });

  it('waits until every event is stored or rejected, says which, and only then suggests read', async () => {
    // Prepare
    await stack.start(['--no-console']);

    // Act
    const result = await stack.cli([
      'publish',
      ...['--generate', '40', '--streams', '4', '--invalid-ratio', '0.1', '--stream-prefix', 'wait', '--wait'],
    ]);
    const read = await stack.cli(['read', 'wait-1', '--json']);

    // Assess: right after publish returned, the suggested read shows the whole stream.
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^published 40 of 40 events to the local stack \(standard queue\) in /);
    expect(lines[1]).toMatch(
      /^stored 36, rejected 4 \(SchemaViolation 4\) in \d+\.\d s; npx eventstore rejected lists them$/,
    );
    expect(lines[2]).toBe('next: npx eventstore read wait-1');
    const invalidInStream1 = 10 - (JSON.parse(read.stdout) as { events: unknown[] }).events.length;
    expect(invalidInStream1).toBeGreaterThanOrEqual(0);
    const rejected = await stack.cli(['rejected', '--json']);
    const rejectedOfStream1 = (JSON.parse(rejected.stdout) as { streamId?: string }[]).filter(
      (letter) => letter.streamId === 'wait-1',
    ).length;
    expect(invalidInStream1).toBe(rejectedOfStream1);
  });

  it('waits by default on a terminal, with a progress bar; not when the output is a pipe', async () => {
    // Act: on a pseudo-terminal (util-linux `script`), and through a pipe.
    const command = `"${process.execPath}" "${join(PROJECT_ROOT, 'bin', 'eventstore.js')}" publish --generate 20 --streams 2 --stream-prefix tty`;
    const terminal = new Child(
      spawn('script', ['-qec', command, '/dev/null'], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, EVENTSTORE_DATA_DIR: stack.dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const code = await terminal.exited;
    const piped = await stack.cli(['publish', '--generate', '20', '--streams', '2', '--stream-prefix', 'pipe']);

    // Assess
    expect(code).toBe(0);
    expect(terminal.stdout).toContain('[##############################] 20/20 (100%) stored or rejected');
    const screen = onScreen(terminal.stdout);
    expect(screen[0]).toBe('[##############################] 20/20 (100%) sent');
    expect(screen[1]).toMatch(/^published 20 of 20 events /);
    expect(screen[2]).toBe('[##############################] 20/20 (100%) stored or rejected');
    expect(screen[3]).toMatch(/^stored 20, rejected 0 in \d+\.\d s$/);
    expect(screen[4]).toBe('next: npx eventstore read tty-1');
    expect(piped.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^published 20 of 20 events /),
      'next: npx eventstore read pipe-1',
    ]);
  });

  it('gives up after --wait-timeout with one line and exit code 1 when nothing consumes the queue', async () => {
    // Prepare: a second stack without pollers (--concurrency 0): what is sent stays in the queue.
    const idle = new StackProcess();
    try {
      await idle.start(['--no-console', '--concurrency', '0']);

      // Act
      const result = await idle.cli(['publish', '--generate', '5', '--streams', '1', '--wait', '--wait-timeout', '2']);

      // Assess
      expect(result.code).toBe(1);
      expect(result.stdout.trimEnd().split('\n').at(-1)).toMatch(/^stored 0, rejected 0 in \d+\.\d s$/);
      expect(result.stderr).toBe(
        'eventstore: 5 of 5 events neither stored nor rejected after 2 s; npx eventstore stats shows the queue\n',
      );
    } finally {
      await idle.stop();
    }
  });
});
