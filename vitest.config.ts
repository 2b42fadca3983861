import { defineConfig } from 'vitest/config';
// First: on a Node.js the dependencies do not support, `npm test` says so in one line (as npm
// start and the CLI do) instead of failing later on a missing built-in module.
import { exitIfTooOld } from './bin/node-version.js';
import { LOCAL_REGION } from './local/defaults.ts';

exitIfTooOld();

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);

export default defineConfig({
  test: {
    // AsyncLocalStorage without async_hooks (the default from Node 24, a flag since 22.7): the
    // handler and the fault exploration use it on every promise, and async_hooks doubled the
    // exploration's CPU time.
    execArgv: major > 22 || (major === 22 && minor >= 7) ? ['--experimental-async-context-frame'] : [],
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: {
      // Local engines accept any credentials; these keep the SDK from looking elsewhere.
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_REGION: LOCAL_REGION,
      AWS_EC2_METADATA_DISABLED: 'true',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      DDB_LOCAL_TELEMETRY: '0',
      POWERTOOLS_DEV: 'true',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_TRACE_ENABLED: 'false',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  },
});
