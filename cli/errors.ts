/** The CLI's errors: a failure the user can act on, and the one line printed for any failure. */

/** A failure the user can act on: printed as one line, exit code 1. */
export class CliError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** One line for a failure the user can act on. */
export function describeFailure(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const code =
    (error as { code?: string; cause?: { code?: string } }).code ??
    (error as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED')
    return 'the local stack does not answer (connection refused): is npm start still running?';
  if (error instanceof Error) return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`;
  return String(error);
}
