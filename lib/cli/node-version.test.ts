import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nodeVersionProblem } from './node-version.js';

test('Node.js 20 and newer will do; older or unreadable versions get one clear complaint', () => {
  for (const v of ['v20.0.0', 'v20.20.2', 'v22.11.0', 'v100.0.0', process.version]) assert.is(nodeVersionProblem(v), undefined, v);
  assert.is(nodeVersionProblem('v18.19.0'), 'Node.js >= 20 is required (found v18.19.0); see README "Prerequisites"');
  for (const v of ['v19.9.0', 'v8.17.0', 'v2.0.0', '18.19.0', '']) assert.type(nodeVersionProblem(v), 'string', v);
});

test.run();
