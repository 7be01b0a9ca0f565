#!/usr/bin/env bash
# Durability: clients send feedback while the server is killed with SIGKILL; after a restart every event the server
# acknowledged (HTTP 200, "stored": true) is in the store, and the restarted server serves the users.
# Usage: durability_test.sh PALIGN_BIN SOURCE_DIR
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
pids=()
trap 'kill -9 ${pids[@]+"${pids[@]}"} 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_server() {
  "$bin" serve --store "$tmp/users.db" --reward "$src/tests/data/hf/models/llama_rm_multi" --port 0 --quiet \
    2>"$tmp/log.$1" &
  server=$!
  pids+=($server)
  port=""
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log.$1" 2>/dev/null || true)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  cat "$tmp/log.$1"
  echo "FAIL: the server did not start"
  exit 1
}
start_server 1
# 4 clients, each its own user, each feedback with its own idempotency key; a key is written down once acknowledged.
for c in 1 2 3 4; do
  (
    i=0
    while :; do
      i=$((i + 1))
      body="{\"user\":\"u$c\",\"prompt\":\"Tell me\",\"chosen\":\" a joke $i\",\"rejected\":\" no\",\"key\":\"c$c-$i\"}"
      out=$(curl -s --max-time 10 -X POST "http://127.0.0.1:$port/v1/feedback" -H 'Content-Type: application/json' \
        -d "$body" -w '\n%{http_code}' 2>/dev/null) || exit 0
      [ "${out##*$'\n'}" = 200 ] && echo "$out" | grep -q '"stored":true' && echo "c$c-$i" >>"$tmp/acked.$c"
    done
  ) &
  pids+=($!)
done
sleep 4
kill -9 "$server"
wait "$server" 2>/dev/null || true
sleep 0.5
acked=$(cat "$tmp"/acked.* 2>/dev/null | wc -l)
[ "$acked" -gt 10 ] || { echo "FAIL: only $acked events acknowledged before the kill"; exit 1; }
# Every acknowledged key is stored.
missing=0
for c in 1 2 3 4; do
  [ -f "$tmp/acked.$c" ] || continue
  "$bin" user history --store "$tmp/users.db" --user "u$c" >"$tmp/history.$c"
  while read -r key; do
    grep -q "\"key\":\"$key\"" "$tmp/history.$c" || { echo "lost: $key"; missing=$((missing + 1)); }
  done <"$tmp/acked.$c"
done
stored=$(cat "$tmp"/history.* | grep -c '"type":"choice"' || true)
echo "acknowledged $acked events before SIGKILL; $stored in the store; $missing lost"
[ "$missing" -eq 0 ] || { echo "FAIL: acknowledged events were lost"; exit 1; }
# The restarted server serves the same users from the same store.
start_server 2
profile=$(curl -s "http://127.0.0.1:$port/v1/users/u1")
echo "$profile" | grep -q '"version"' || { echo "FAIL: the restarted server does not serve u1: $profile"; exit 1; }
# SIGTERM under load: 4 clients keep sending; the server drains and exits 0. Every answer is a 200 (stored) or a clear
# 503 (shutting down); every acknowledged event is in the store.
rm -f "$tmp"/acked.* "$tmp"/status.*
for c in 1 2 3 4; do
  (
    i=0
    while :; do
      i=$((i + 1))
      body="{\"user\":\"t$c\",\"prompt\":\"Tell me\",\"chosen\":\" a pun $i\",\"rejected\":\" no\",\"key\":\"t$c-$i\"}"
      out=$(curl -s --max-time 10 -X POST "http://127.0.0.1:$port/v1/feedback" -H 'Content-Type: application/json' \
        -d "$body" -w '\n%{http_code}' 2>/dev/null) || exit 0
      code=${out##*$'\n'}
      echo "$code" >>"$tmp/status.$c"
      [ "$code" = 200 ] && echo "t$c-$i" >>"$tmp/acked.$c"
      [ "$code" = 000 ] && exit 0
    done
  ) &
  pids+=($!)
done
sleep 3
kill -TERM "$server"
status=0
wait "$server" || status=$?
[ $status -eq 0 ] || { cat "$tmp/log.2"; echo "FAIL: exit $status after SIGTERM under load"; exit 1; }
grep -q "palign serve: stopped" "$tmp/log.2" || { cat "$tmp/log.2"; echo "FAIL: no graceful stop"; exit 1; }
sleep 0.5
codes=$(cat "$tmp"/status.* | sort | uniq -c | tr '\n' ' ')
bad=$(cat "$tmp"/status.* | grep -cv '^\(200\|503\|000\)$' || true)
[ "$bad" -eq 0 ] || { echo "FAIL: answers other than 200 or 503 during the drain: $codes"; exit 1; }
acked=$(cat "$tmp"/acked.* | wc -l)
[ "$acked" -gt 10 ] || { echo "FAIL: only $acked events acknowledged before SIGTERM"; exit 1; }
missing=0
for c in 1 2 3 4; do
  "$bin" user history --store "$tmp/users.db" --user "t$c" >"$tmp/history.t$c"
  while read -r key; do
    grep -q "\"key\":\"$key\"" "$tmp/history.t$c" || { echo "lost: $key"; missing=$((missing + 1)); }
  done <"$tmp/acked.$c"
done
echo "SIGTERM under load: answers (count code) $codes; $acked acknowledged, $missing lost"
[ "$missing" -eq 0 ] || { echo "FAIL: acknowledged events were lost"; exit 1; }
echo PASS
