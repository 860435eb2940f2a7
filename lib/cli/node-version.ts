/** The oldest Node.js major lazybd runs on: package.json "engines", also checked by integration/setup/check-node.sh. */
export const MIN_NODE_MAJOR = 20;

/** The complaint about running on Node.js `version` (as process.version prints it), or undefined if it will do. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return `Node.js >= ${MIN_NODE_MAJOR} is required (found ${version}); see README "Prerequisites"`;
}
