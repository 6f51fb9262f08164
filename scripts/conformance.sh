#!/usr/bin/env bash
# `npm run conformance`: the official MCP conformance suite against our client, for the latest
# 0.1.x and the newest 0.2.0 alpha, under Node 22 from the npm package node@22.
# Every scenario must pass except those in conformance/expected-failures-<version>.txt; the
# suite itself fails the run when a listed scenario starts passing (stale entry).
# Then the authorization-server conformance script, when it exists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

versions=(${CONFORMANCE_VERSIONS:-0.1.16 0.2.0-alpha.12})
suites=(${CONFORMANCE_SUITES:-auth backcompat extensions draft})
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

for version in "${versions[@]}"; do
  expected="conformance/expected-failures-$version.txt"
  baseline="$work/baseline-$version.yml"
  # The .txt keeps a reason per line; the suite wants YAML: client: [scenario, ...].
  {
    echo "client:"
    if [[ -f "$expected" ]]; then
      grep -v '^\s*#' "$expected" | sed -e 's/\s*#.*$//' -e '/^\s*$/d' -e 's/^\s*/  - /'
    fi
  } > "$baseline"
  for suite in "${suites[@]}"; do
    echo "== conformance $version --suite $suite (Node 22)"
    if ! npx -y -p node@22 -p "@modelcontextprotocol/conformance@$version" -- \
      conformance client --command "$root/scripts/conformance-client" --suite "$suite" \
      --expected-failures "$baseline" -o "$work/results-$version-$suite" > "$work/out.txt" 2>&1; then
      failed=1
      echo "!! conformance $version $suite failed:"
    fi
    sed -n '/=== SUITE SUMMARY ===/,$p' "$work/out.txt"
  done
done

if [[ -x scripts/conformance-authorization-server.sh || -f scripts/conformance-authorization-server.sh ]]; then
  echo "== authorization server conformance"
  bash scripts/conformance-authorization-server.sh || failed=1
fi

exit "$failed"
