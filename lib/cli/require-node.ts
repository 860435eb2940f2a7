// Imported first by bin/lazybd, so it runs before any other module's body: on an older Node,
// one clear line instead of a stack trace from a dependency later (undici, for one, needs
// Node 20's File global and fails only when serve or a registry command loads it).
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.version);
if (problem) {
  process.stderr.write(`lazybd: ${problem} (E_NODE_VERSION)\n`);
  process.exit(1);
}
