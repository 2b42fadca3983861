#!/usr/bin/env node
import { buildApp } from './synth.ts';

// The CLI's entry (cdk.json): context comes from `-c key=value` and cdk.json.
buildApp().app.synth();
