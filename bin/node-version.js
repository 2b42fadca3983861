// The Node.js versions eventstore runs on, checked before anything is imported that needs them.
// Plain JavaScript that imports nothing but node:process, so that it runs (and says so in one
// line) on any old Node.
//
// The local mode's SQS server keeps its queues in `node:sqlite`. That module came with Node.js
// 22.5 behind the `--experimental-sqlite` flag, and works without the flag from 22.13 (and from
// 23.4 on the 23 line) (README, "Troubleshooting").
import process from 'node:process';

/** The oldest Node.js that has `node:sqlite` without a flag. */
export const NEEDED = '22.13';

/**
 * Why this Node.js cannot run eventstore, as the one line to print, or undefined when it can.
 *
 * @param {string} version `process.version`, e.g. `v20.20.2`
 * @param {readonly string[]} flags the node options in effect (`process.execArgv` and NODE_OPTIONS)
 * @returns {string | undefined}
 */
export function nodeVersionProblem(version, flags = []) {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const unflagged = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13);
  const flagged =
    (major === 23 || (major === 22 && minor >= 5)) && flags.some((flag) => flag === '--experimental-sqlite');
  if (unflagged || flagged) return undefined;
  const needed = major === 23 ? `${NEEDED} or later (23.4 or later on Node.js 23)` : `${NEEDED} or later`;
  return `eventstore needs Node.js ${needed}; this is Node.js ${version}`;
}

/**
 * Print the one line and end the process with exit code 1 when this Node.js is too old.
 *
 * @param {string} [version]
 */
export function exitIfTooOld(version = process.version) {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const problem = nodeVersionProblem(version, flags);
  if (problem === undefined) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
