#!/usr/bin/env bash
# lazybd needs Node.js >= 20 with npm (package.json "engines"); Debian 12's own nodejs is 18.
# install-deps.sh runs this first, so a missing or old node fails here in one line instead of
# in a stack trace after the apt step. Bash builtins only: it runs with any PATH.
set -euo pipefail
min=20
fail() {
  printf 'lazybd: %s; see README "Prerequisites"\n' "$1" >&2
  exit 1
}
command -v node >/dev/null || fail "Node.js >= $min is required (no node on PATH)"
found=$(node --version 2>/dev/null) || fail "Node.js >= $min is required (node --version failed)"
[[ $found =~ ^v([0-9]+)\. ]] || fail "Node.js >= $min is required (node --version printed \"$found\")"
((BASH_REMATCH[1] >= min)) || fail "Node.js >= $min is required (found $found)"
command -v npm >/dev/null || fail "npm is required (no npm on PATH)"
