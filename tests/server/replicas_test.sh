#!/usr/bin/env bash
# Two `palign serve` replicas on one PostgreSQL store (a throwaway cluster: initdb and pg_ctl in a temporary directory,
# a Unix socket only). Clients send feedback to both, each event to the replica after the last one; one replica is
# killed with SIGKILL mid-stream and the clients retry what it did not answer on the other, under the same key. Then:
# every acknowledged event is stored exactly once, every user's stored profile equals the replay of their events, and
# the surviving replica serves each user's latest version. Exit 77 (skipped) where the PostgreSQL server binaries are
# absent, unless CI=true. Usage: replicas_test.sh PALIGN_BIN SOURCE_DIR
set -euo pipefail
bin=$1 src=$2
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "the PostgreSQL server binaries (initdb, pg_ctl) are absent; install postgresql (scripts/setup)"
  [ "${CI:-}" = true ] && { echo "FAIL: CI needs them"; exit 1; }
  exit 77
fi
tmp=$(mktemp -d /tmp/palign_replicas.XXXXXX)
as=""
if [ "$(id -u)" -eq 0 ]; then
  as="runuser -u postgres --"
  chown postgres "$tmp"
fi
chmod 755 "$tmp"
pids=()
cleanup() {
  kill -9 ${pids[@]+"${pids[@]}"} 2>/dev/null || true
  $as "$pgbin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
$as "$pgbin/initdb" -D "$tmp/data" -U postgres --auth=trust --no-sync -E UTF8 >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log"; echo "FAIL: initdb"; exit 1; }
$as "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w -o "-c listen_addresses='' -k $tmp -p 5432" start >/dev/null ||
  { cat "$tmp/pg.log"; echo "FAIL: pg_ctl start"; exit 1; }
$as "$pgbin/createdb" -h "$tmp" -p 5432 -U postgres palign
url="postgresql:///palign?host=$tmp&port=5432&user=postgres"

ports=()
start_replica() {
  "$bin" serve --store "$url" --reward "$src/tests/data/hf/models/llama_rm_multi" --port 0 --quiet 2>"$tmp/log.$1" &
  pids+=($!)
  eval "replica$1=$!"
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log.$1" 2>/dev/null || true)
    [ -n "$port" ] && { ports+=("$port"); return 0; }
    sleep 0.1
  done
  cat "$tmp/log.$1"
  echo "FAIL: replica $1 did not start"
  exit 1
}
start_replica 0
start_replica 1
echo "replicas on ports ${ports[*]}, store $url"
send() {  # send PORT BODY: prints the HTTP status and body
  curl -s --max-time 10 -X POST "http://127.0.0.1:$1/v1/feedback" -H 'Content-Type: application/json' -d "$2" \
    -w '\n%{http_code}' 2>/dev/null || echo $'\n000'
}
# 4 clients, each its own user; each event to the replica after the last one; a refused or unanswered event is retried
# under its key on the other replica; an acknowledged key is written down.
for c in 1 2 3 4; do
  (
    i=0
    while [ ! -f "$tmp/stop" ]; do
      i=$((i + 1))
      body="{\"user\":\"u$c\",\"prompt\":\"Tell me\",\"chosen\":\" a joke $i\",\"rejected\":\" no\",\"key\":\"c$c-$i\"}"
      for try in 0 1 2 3; do
        out=$(send "${ports[$(((i + try) % 2))]}" "$body")
        if [ "${out##*$'\n'}" = 200 ]; then
          echo "c$c-$i" >>"$tmp/acked.$c"
          break
        fi
      done
    done
  ) &
  pids+=($!)
done
sleep 3
kill -9 "$replica1"
echo "killed replica 1 (SIGKILL) mid-stream"
sleep 3
touch "$tmp/stop"
wait ${pids[@]:2} 2>/dev/null || true
acked=$(cat "$tmp"/acked.* | wc -l)
[ "$acked" -gt 20 ] || { echo "FAIL: only $acked events acknowledged"; exit 1; }
missing=0 doubled=0 stored=0
for c in 1 2 3 4; do
  "$bin" user history --store "$url" --user "u$c" >"$tmp/history.$c"
  stored=$((stored + $(wc -l <"$tmp/history.$c")))
  while read -r key; do
    n=$(grep -c "\"key\":\"$key\"" "$tmp/history.$c" || true)
    [ "$n" -eq 1 ] || { echo "key $key stored $n times"; [ "$n" -eq 0 ] && missing=$((missing + 1)) || doubled=$((doubled + 1)); }
  done <"$tmp/acked.$c"
  "$bin" user rebuild --store "$url" --user "u$c" | grep -q '"equal":true' ||
    { echo "FAIL: u$c's stored profile differs from its replay"; exit 1; }
  version=$("$bin" user show --store "$url" --user "u$c" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
  served=$(curl -s "http://127.0.0.1:${ports[0]}/v1/users/u$c" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
  [ "$served" = "$version" ] || { echo "FAIL: replica 0 serves u$c at version $served, the store holds $version"; exit 1; }
done
echo "acknowledged $acked events through 2 replicas, one killed mid-stream; $stored stored; $missing lost; $doubled duplicated"
[ "$missing" -eq 0 ] && [ "$doubled" -eq 0 ] || { echo "FAIL: acknowledged events were lost or duplicated"; exit 1; }
# The database goes away: the replica says so on /health (a balancer routes around it) and answers feedback with a
# clear 503; once the database is back, the same replica takes feedback again.
health=$(curl -s -w '%{http_code}' "http://127.0.0.1:${ports[0]}/health")
[ "${health: -3}" = 200 ] || { echo "FAIL: /health with the database up: $health"; exit 1; }
$as "$pgbin/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null
health=$(curl -s -w '%{http_code}' "http://127.0.0.1:${ports[0]}/health")
echo "/health with the database stopped: $health"
[ "${health: -3}" = 503 ] && echo "$health" | grep -q store_unavailable ||
  { echo "FAIL: /health does not report the unreachable store"; exit 1; }
body='{"user":"u1","prompt":"Tell me","chosen":" later","rejected":" no","key":"after-stop"}'
out=$(send "${ports[0]}" "$body")
echo "feedback with the database stopped: ${out//$'\n'/ }"
[ "${out##*$'\n'}" = 503 ] || { echo "FAIL: feedback without the database is not a 503"; exit 1; }
$as "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w -o "-c listen_addresses='' -k $tmp -p 5432" start >/dev/null
out=$(send "${ports[0]}" "$body")
[ "${out##*$'\n'}" = 200 ] || { echo "FAIL: feedback after the database came back: $out"; exit 1; }
echo PASS
