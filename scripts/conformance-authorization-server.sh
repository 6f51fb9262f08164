#!/usr/bin/env bash
# The official MCP conformance suite, authorization-server mode, against our embedded AS.
#
# Starts `mcp-warden start --demo` (under this machine's Node, the one npm ci installed for) on an
# ephemeral port with a temporary database, pre-registers a public client for the suite's
# loopback callback, runs `conformance authorization` under Node 22 (npm package node@22), plays
# the user in the authorization-code scenario (signs in as alice and clicks Allow through the
# real login and consent forms), then tears everything down.
#
# Exit status: 0 when every failing check is listed in
# scripts/conformance-authorization-server.expected-failures (one "check-id  reason" per line)
# and every listed check still fails; 1 otherwise (a new failure, or an expected one now passing).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFORMANCE_VERSION="${CONFORMANCE_VERSION:-0.2.0-alpha.12}"
EXPECTED="scripts/conformance-authorization-server.expected-failures"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PORT="$(free_port)"
CALLBACK_PORT="$(free_port)"
ISSUER="http://localhost:${PORT}"
export PORT WARDEN_DB="$TMP/warden.db" WARDEN_DEMO_PASSWORD="conformance-demo-password" WARDEN_DEMO_CLIENT_SECRET="conformance-demo-secret"

node bin/mcp-warden.js start --demo >"$TMP/warden.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${PORT}/.well-known/oauth-authorization-server" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:${PORT}/.well-known/oauth-authorization-server" >/dev/null || { echo "mcp-warden did not start:"; cat "$TMP/warden.log"; exit 1; }

node bin/mcp-warden.js clients add --demo --public --native --name "MCP conformance suite" \
  --client-id conformance-client --redirect-uri "http://127.0.0.1:${CALLBACK_PORT}/callback" >/dev/null

echo "conformance ${CONFORMANCE_VERSION} against ${ISSUER} (callback port ${CALLBACK_PORT})"
npx -y -p node@22 -p "@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}" -- conformance authorization \
  --url "$ISSUER" --client-id conformance-client --resource "${ISSUER}/mcp" --port "$CALLBACK_PORT" \
  -o "$TMP/results" >"$TMP/conformance.log" 2>&1 &
CONF_PID=$!
PIDS+=($CONF_PID)

# Play the user: when the suite prints the authorization URL, sign in and allow.
for _ in $(seq 1 300); do
  URL="$(grep -Eo 'http://localhost:[0-9]+/oauth/authorize\?[^ ]+' "$TMP/conformance.log" | head -1 || true)"
  [ -n "$URL" ] && break
  kill -0 "$CONF_PID" 2>/dev/null || break
  sleep 0.2
done
if [ -n "${URL:-}" ]; then
  AUTH_URL="$URL" node --import tsx --input-type=module -e '
    import { Browser } from "./test/helpers/oauth.ts";
    const browser = new Browser();
    const origin = new URL(process.env.AUTH_URL).origin;
    let step = await browser.follow(process.env.AUTH_URL, origin);
    for (let i = 0; i < 4 && new URL(step.url).origin === origin; i++) {
      const html = await step.response.text();
      const fields = html.includes("name=\"password\"") ? { username: "alice", password: process.env.WARDEN_DEMO_PASSWORD } : { decision: "allow" };
      const r = await browser.submit(step.url, html, fields);
      step = await browser.follow(new URL(r.headers.get("location"), step.url).href, origin);
    }
    await (await fetch(step.url)).text();
  ' || echo "playing the user failed"
fi
wait "$CONF_PID" || true
cat "$TMP/conformance.log"

# Compare failures with the expected list.
FAILED="$(node -e '
  const fs = require("fs"), path = require("path");
  const out = new Set();
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.name === "checks.json") for (const c of JSON.parse(fs.readFileSync(p, "utf8"))) if (c.status === "FAILURE") { out.add(c.id); console.error(`FAILURE ${c.id}: ${c.errorMessage ?? c.description}`); } } };
  if (fs.existsSync(process.argv[1])) walk(process.argv[1]);
  console.log([...out].sort().join("\n"));
' "$TMP/results")"
EXPECTED_IDS="$( [ -f "$EXPECTED" ] && grep -Ev '^\s*(#|$)' "$EXPECTED" | awk '{print $1}' | sort || true)"
STATUS=0
for id in $FAILED; do
  grep -qx "$id" <<<"$EXPECTED_IDS" || { echo "UNEXPECTED FAILURE: $id"; STATUS=1; }
done
for id in $EXPECTED_IDS; do
  grep -qx "$id" <<<"$FAILED" || { echo "EXPECTED FAILURE NOW PASSES (remove it from $EXPECTED): $id"; STATUS=1; }
done
if ! ls "$TMP"/results >/dev/null 2>&1 || [ -z "$(find "$TMP/results" -name checks.json 2>/dev/null)" ]; then
  echo "no results were written"; STATUS=1
fi
[ "$STATUS" = 0 ] && echo "conformance (authorization server): OK"
exit "$STATUS"
