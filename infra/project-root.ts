/**
 * The project's root folder (where package.json is), with a trailing separator, so
 * `${PROJECT_ROOT}package-lock.json` names a file (the CDK bundling's `depsLockFilePath`).
 *
 * It lives in infra/ because the deployable app needs it (every function's bundle) and must not
 * import local/; local/defaults.ts re-exports it for the local mode, the CLI, the bench and the
 * tests (docs/ARCHITECTURE.md, "Layers and flow"). eslint.config.js forbids computing it anywhere
 * else.
 */
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url));
