import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { PROJECT_ROOT } from '../project-root.ts';

/**
 * What every Lambda function of the stack shares: the repository as the project root, the
 * newest Node.js runtime on arm64, esbuild bundling (no Docker) to ESM. One place, so the
 * ingest function, the subscriptions and the redrive workflow's function cannot drift apart.
 */

/** The repository root: the handlers' entries, package-lock.json and tsconfig.json live there. */
export { PROJECT_ROOT };

/** The newest Node.js runtime this aws-cdk-lib offers. */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** The Node.js version esbuild compiles for. */
const BUNDLE_TARGET = 'node22';

/** Some CommonJS dependencies call require(); ESM output has none unless we make one. */
export const REQUIRE_BANNER =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/**
 * The esbuild settings of every function: minified ESM with a source map, the AWS SDK bundled
 * (each function runs the client versions package-lock.json pins and the tests ran, not
 * whichever the runtime ships), with the require() banner and ESM-first package entry points
 * that bundled CommonJS needs.
 */
export function lambdaBundling(): nodejs.BundlingOptions {
  return {
    forceDockerBundling: false,
    format: nodejs.OutputFormat.ESM,
    banner: REQUIRE_BANNER,
    mainFields: ['module', 'main'],
    target: BUNDLE_TARGET,
    minify: true,
    sourceMap: true,
    bundleAwsSDK: true,
    externalModules: [],
  };
}

/**
 * The props of a NodejsFunction that say what it runs and how it is built: `entry`'s export
 * `handler`, bundled with {@link lambdaBundling}, on {@link LAMBDA_RUNTIME} and arm64.
 *
 * @example
 * new nodejs.NodejsFunction(this, 'Function', { ...bundledHandler(entry), role, timeout });
 */
export function bundledHandler(
  entry: string,
): Pick<
  nodejs.NodejsFunctionProps,
  'entry' | 'handler' | 'projectRoot' | 'depsLockFilePath' | 'runtime' | 'architecture' | 'bundling'
> {
  return {
    entry,
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
    runtime: LAMBDA_RUNTIME,
    architecture: lambda.Architecture.ARM_64,
    bundling: lambdaBundling(),
  };
}

/** Lambda writes a function's logs with these, to its own log group only. */
export const LOG_ACTIONS = ['logs:CreateLogStream', 'logs:PutLogEvents'] as const;

/**
 * A function's role, assumed by Lambda, that may write to the function's own log group and
 * nothing else yet (no managed policies): the caller adds each statement it needs.
 */
export function lambdaRole(scope: Construct, id: string, description: string, logGroup: logs.ILogGroup): iam.Role {
  const role = new iam.Role(scope, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description });
  role.addToPolicy(new iam.PolicyStatement({ actions: [...LOG_ACTIONS], resources: [logGroup.logGroupArn] }));
  return role;
}
