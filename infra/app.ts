#!/usr/bin/env node
import { ConfigError } from './config.ts';
import { buildApp } from './synth.ts';

// The CLI's entry (cdk.json): context comes from `-c key=value` and cdk.json.
try {
  buildApp().app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // A wrong context value is the user's to fix: say which, without a stack trace.
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
}
