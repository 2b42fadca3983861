import { describeLocalStack } from './local-stack-scenario.ts';

describeLocalStack('fifo');
