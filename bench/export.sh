#!/usr/bin/env bash
# Filing-bundle export benchmark: a frozen round of BENCH_PLAINTIFFS
# plaintiffs (default 10,000; two a claim) with BENCH_FILES evidence files
# (default 20,000 of BENCH_FILE_KB kB, default 50), uploaded through the
# real path into the local store. Times, in the same run: `zip -0 -r` of the
# same plaintext files, and the portal's export (started over the API by an
# administrator who passed TOTP; decrypt, ZIP with party list XLSX/CSV,
# claim list, evidence index and manifest, seal into the store). Prints MB/s
# of each and the server's peak RSS during the export.
#   bash bench/export.sh   (BENCH_PLAINTIFFS, BENCH_FILES, BENCH_FILE_KB; BENCH_SERVER_RUST_LOG=info
#                           BENCH_SERVER_LOG=path keeps the server log, which times the export's phases;
#                           BENCH_PERF=path records a CPU profile of the server during the export with perf)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portal-target}"
PLAINTIFFS=${BENCH_PLAINTIFFS:-10000}
FILES=${BENCH_FILES:-20000}
FILE_KB=${BENCH_FILE_KB:-50}
cargo build --release -q -p app --features dev   # the `app dev …` tools
BIN="$CARGO_TARGET_DIR/release/app"
WORK=$(mktemp -d)
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
key() { head -c 32 /dev/urandom | base64; }
export APP_DATA_DIR="$WORK/data" APP_JWT_SECRET=$(key) APP_MASTER_KEY=$(key) APP_BLIND_INDEX_KEY=$(key) \
  APP_MAX_EVIDENCE_FILES=100000 RUST_LOG=warn

echo "seeding $PLAINTIFFS plaintiffs and $FILES files of $FILE_KB kB…" >&2
ROUND=$("$BIN" dev seed-round --plaintiffs "$PLAINTIFFS" --files "$FILES" --file-bytes $((FILE_KB * 1000)) --plain-dir "$WORK/files")
BYTES=$(du -sb "$WORK/files" | cut -f1)

# 1. zip -0 of the same plaintext files: the best of three runs (its speed
#    varies from run to run with the page cache; the best is the hardest bar).
sync
RAW_S=
for _ in 1 2 3; do
  start=$(date +%s.%N)
  (cd "$WORK" && zip -0 -q -r raw.zip files)
  end=$(date +%s.%N)
  rm -f "$WORK/raw.zip"
  RAW_S=$(python3 -c "t=$end-$start; b='$RAW_S'; print(f'{min(t, float(b)) if b else t:.2f}')")
done
RAW=$(python3 -c "print(f'{$BYTES/1e6/$RAW_S:.1f}')")

# 2. The portal's export, over the API.
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
echo "bench admin password 123" | "$BIN" user create --email bench-admin@example.jp --role admin --password-stdin >/dev/null
RUST_LOG=${BENCH_SERVER_RUST_LOG:-warn} ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=off "$BIN" serve > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
json() { python3 -c "import sys,json;print(json.load(sys.stdin)$1)"; }
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"email":"bench-admin@example.jp","password":"bench admin password 123"}' "$BASE/api/v1/auth/login" | json '["token"]')
AUTH="Authorization: Bearer $TOKEN"
SECRET=$(curl -sf -X POST -H "$AUTH" "$BASE/api/v1/auth/totp/setup" | json '["secret"]')
CODE=$(python3 - "$SECRET" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
)
curl -sf -H "$AUTH" -H 'Content-Type: application/json' -d "{\"code\":\"$CODE\"}" "$BASE/api/v1/auth/totp/verify" >/dev/null
SETUP_RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || echo "note: cannot reset the RSS high-water mark" >&2
PERF=
if [ -n "${BENCH_PERF:-}" ]; then perf record -q -F 499 -g -p "$PID" -o "$BENCH_PERF" 2>/dev/null & PERF=$!; sleep 0.5; fi
start=$(date +%s.%N)
EXPORT=$(curl -sf -X POST -H "$AUTH" "$BASE/api/v1/admin/rounds/$ROUND/exports" | json '["id"]')
# Polled every 50 ms with curl alone (a Python start per poll would add
# its own tenth of a second to the figure).
while :; do
  STATUS=$(curl -sf -H "$AUTH" "$BASE/api/v1/admin/exports/$EXPORT")
  case "$STATUS" in
    *'"status":"done"'*) break ;;
    *'"status":"failed"'*) echo "export failed: $STATUS" >&2; exit 1 ;;
  esac
  sleep 0.05
done
end=$(date +%s.%N)
[ -n "$PERF" ] && { kill -INT "$PERF"; wait "$PERF" || true; }
RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
SIZE=$(echo "$STATUS" | json '["size"]')
EXP_S=$(python3 -c "print(f'{$end-$start:.1f}')")
EXP=$(python3 -c "print(f'{$SIZE/1e6/($end-$start):.1f}')")

echo "Filing bundle: $PLAINTIFFS plaintiffs, $FILES files ($((BYTES / 1000000)) MB), $(nproc) cores"
printf '%-46s %10s %10s\n' "what" "MB/s" "seconds"
printf '%-46s %10s %10s\n' "zip -0 -r of the plaintext files (best of 3)" "$RAW" "$RAW_S"
printf '%-46s %10s %10s\n' "portal export (decrypt, ZIP, seal into store)" "$EXP" "$EXP_S"
echo "ratio: $(python3 -c "print(f'{$EXP/$RAW:.2f}')") of zip -0 (target: at least 0.7)"
echo "server peak RSS during the export: $RSS MB (target: under 200 MB; $SETUP_RSS MB after start-up)"
[ -n "${BENCH_SERVER_LOG:-}" ] && cp "$WORK/server.log" "$BENCH_SERVER_LOG" || true
