/** Types of bin/node-version.js (plain JavaScript, so that any old Node.js can run it). */
export declare const RANGE: string;
export declare const NEEDED: string;
export declare function nodeVersionProblem(version: string): string | undefined;
export declare function exitIfTooOld(version?: string): void;
