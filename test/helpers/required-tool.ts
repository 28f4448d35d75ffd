/** A program a suite needs (a browser, redis-server) is missing: a loud skip (null), but in CI a
 * failure, because a suite that silently does not run proves nothing. */
export function missingTool(suite: string, problem: string): null {
  const message = `${problem}: ${suite} cannot run.`;
  if (process.env['CI']) throw new Error(message);
  process.stderr.write(`\n*** SKIPPING ${suite.toUpperCase()}: ${message} ***\n\n`);
  return null;
}
