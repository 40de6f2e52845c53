#!/usr/bin/env bash
# http.sh — the same calls as basic.ts and session-store.ts, with curl against the HTTP API.
#
# Shows: PUT /api/v1/kv/{key} with a JSON body {"value": ..., "ttl"?: seconds} and a
# `Consistency: strong | eventual | all` header (201 when created, 200 when replaced);
# GET → {"key", "value", "version"} (404 {"code": "NOT_FOUND"} when missing or expired);
# DELETE → 204; a typed error body ({"code", "message"}); and a value expiring by its ttl.
# Every node serves the API (it routes through the SDK it embeds), so any node will do.
#
# Run against `npm start`'s cluster:  bash examples/http.sh
# Other node:                         RINGKV_SEEDS=host:port bash examples/http.sh
set -euo pipefail

NODE="${RINGKV_SEEDS:-127.0.0.1:7001}"
BASE="http://${NODE%%,*}/api/v1/kv"
KEY="example-http-$$"
LONG_KEY=$(printf 'k%.0s' {1..300})

# Prints the command (quoted so that it can be pasted), then runs it: body, then status.
show() {
  local line="curl" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@-]+$ ]]; then line+=" $a"; else line+=" '$a'"; fi
  done
  echo "\$ ${line/$LONG_KEY/\$LONG_KEY}"
  curl -sS -w '\n  → HTTP %{http_code}\n' "$@"
  echo
}

# Fails the script unless the call answers with the expected HTTP status.
expect() {
  local want="$1"
  shift
  local got
  got=$(curl -sS -o /dev/null -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then
    echo "expected HTTP $want, got $got: curl $*" >&2
    exit 1
  fi
}

echo "== put and get a string, at strong (the default: 2 of 3 replicas)"
show -X PUT -H 'content-type: application/json' -d '{"value": "hello"}' "$BASE/$KEY"
show "$BASE/$KEY"
expect 200 "$BASE/$KEY"

echo "== a JSON value, written by all three replicas, read from one"
show -X PUT -H 'content-type: application/json' -H 'Consistency: all' -d '{"value": {"name": "Ada", "langs": ["en", "fr"]}}' "$BASE/$KEY-json"
show -H 'Consistency: eventual' "$BASE/$KEY-json"

echo "== delete, then the key is gone (404 NOT_FOUND)"
show -X DELETE "$BASE/$KEY"
show "$BASE/$KEY"
expect 404 "$BASE/$KEY"
show -X DELETE "$BASE/$KEY-json"

echo "== a value with a ttl of 1 second expires by itself"
show -X PUT -H 'content-type: application/json' -d '{"value": "short-lived", "ttl": 1}' "$BASE/$KEY-ttl"
show "$BASE/$KEY-ttl"
sleep 1.2
show "$BASE/$KEY-ttl"
expect 404 "$BASE/$KEY-ttl"

echo "== errors carry a stable code (LONG_KEY is 300 bytes; the limit is 256)"
show -X PUT -H 'content-type: application/json' -d '{"value": "x"}' "$BASE/$LONG_KEY"
show -X PUT -H 'content-type: application/json' -H 'Consistency: sometimes' -d '{"value": "x"}' "$BASE/$KEY"
expect 400 -X PUT -H 'content-type: application/json' -H 'Consistency: sometimes' -d '{"value": "x"}' "$BASE/$KEY"
