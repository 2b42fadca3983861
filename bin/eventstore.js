#!/usr/bin/env node
// The `eventstore` command (package.json "bin"): runs the TypeScript CLI through tsx.
import './require-node.js';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../local/cli/main.ts');
process.exitCode = await main(process.argv);
// Every client is destroyed at the end of a command; should anything still hold the event loop, do not hang.
setTimeout(() => process.exit(), 3000).unref();
