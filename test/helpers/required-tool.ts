/**
 * A program a suite needs from the machine (a browser, redis-server) was not found. Outside CI
 * that is a loud skip; in CI (CI=true) a failure, because a suite that silently does not run
 * proves nothing. Returns null for the caller to skip with.
 */
export function missingTool(suite: string, problem: string): null {
  const message = `${problem}: ${suite} cannot run.`;
  if (process.env['CI']) throw new Error(message);
  process.stderr.write(`\n*** SKIPPING ${suite.toUpperCase()}: ${message} ***\n\n`);
  return null;
}
