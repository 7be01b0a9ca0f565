#!/usr/bin/env bash
# palign serve with real clients: the official openai package (node) and the page in headless Chromium
# (playwright-core), then a graceful stop by SIGTERM. Usage: clients_test.sh PALIGN_BIN SOURCE_DIR OUT_DIR
set -euo pipefail
bin=$1 src=$2 out=$3
js="$src/tests/js"
[ -d "$js/node_modules/openai" ] || { echo "FAIL: $js/node_modules is missing; run scripts/setup (npm ci)"; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rc=$?; set +e; [ $rc -eq 0 ] || { echo "--- server log"; cat "$tmp/log" 2>/dev/null; }; { [ -z "${pid:-}" ] || kill -9 "$pid" 2>/dev/null || true; }; rm -rf "$tmp"' EXIT
key=$("$bin" key --api-keys "$tmp/keys" --tenant clients)
"$bin" serve --store "$tmp/users.db" --reward "$src/tests/data/hf/models/llama_rm_multi" --api-keys "$tmp/keys" \
  --port 0 --max-tokens 64 2>"$tmp/log" &
pid=$!
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log" 2>/dev/null || true)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$tmp/log"; echo "FAIL: the server did not start"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log"; echo "FAIL: no port after 30 s"; exit 1; }
base="http://127.0.0.1:$port"
echo "server at $base"
node "$js/openai_e2e.mjs" "$base" "$key"
node "$js/page_e2e.mjs" "$base" "$key" "$out/page.png"
kill -TERM $pid
status=0
wait $pid || status=$?
grep -q "palign serve: stopped" "$tmp/log" || { cat "$tmp/log"; echo "FAIL: no graceful stop"; exit 1; }
[ $status -eq 0 ] || { echo "FAIL: exit $status after SIGTERM"; exit 1; }
echo "PASS (screenshot: $out/page.png)"
