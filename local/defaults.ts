/**
 * The local mode's fixed values (README, "Local mode"; docs/ARCHITECTURE.md, "Local mode"):
 * the region, account and credentials the local engines are reached with, the ports
 * `npm start` listens on by default, and the project's root folder (computed in
 * infra/project-root.ts, which the deployable app may import). Everything under local/ (and the
 * tests) imports them; eslint.config.js forbids the literals anywhere else.
 */

/** The region every local client and ARN uses; the local engines accept any. */
export const LOCAL_REGION = 'us-east-1';
/** The account id in local ARNs and queue URLs. */
export const LOCAL_ACCOUNT = '000000000000';
/** The local engines check no signature; the SDK still wants credentials to sign with. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** The ports `npm start` uses unless told otherwise (0 = any free port). */
export const LocalPorts = {
  dynamoDb: 8000,
  sqs: 9324,
  stepFunctions: 8083,
} as const;

/** The project's root folder, with a trailing separator (infra/project-root.ts). */
export { PROJECT_ROOT } from '../infra/project-root.ts';

/** A local Lambda function's ARN, as the local mode hands it to a handler in its context. */
export function localFunctionArn(name: string, region: string = LOCAL_REGION): string {
  return `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${name}`;
}
