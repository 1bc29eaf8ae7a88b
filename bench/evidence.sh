#!/usr/bin/env bash
# Evidence upload benchmark: 1 GiB in 10 MB files from 16 concurrent clients
# against the release binary (local store), beside a raw copy of the same
# bytes on the same disk in the same run; prints MB/s and the server's peak RSS.
#   bash bench/evidence.sh            (BENCH_TOTAL_MB, BENCH_FILE_MB, BENCH_CLIENTS to change)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portal-target}"
TOTAL_MB=${BENCH_TOTAL_MB:-1024}
FILE_MB=${BENCH_FILE_MB:-10}
CLIENTS=${BENCH_CLIENTS:-16}
FILES=$(( (TOTAL_MB + FILE_MB - 1) / FILE_MB ))

cargo build --release -q -p app
BIN="$CARGO_TARGET_DIR/release/app"
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A well-formed JPEG of FILE_MB megabytes (JFIF header, then scan data).
python3 - "$WORK/photo.jpg" "$FILE_MB" <<'PY'
import os, sys
path, mb = sys.argv[1], int(sys.argv[2])
header = bytes([0xFF,0xD8,0xFF,0xE0,0x00,0x10]) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0" + bytes([0xFF,0xDA,0x00,0x08,1,1,0,0,0x3F,0])
body = os.urandom(mb * 1000 * 1000 - len(header) - 2)
open(path, "wb").write(header + body + bytes([0xFF,0xD9]))
PY
BYTES=$(stat -c %s "$WORK/photo.jpg")

# Raw copy of the same bytes to the same disk, fsynced, same concurrency.
mkdir -p "$WORK/raw"
start=$(date +%s.%N)
seq 1 "$FILES" | xargs -P "$CLIENTS" -I{} sh -c "cp '$WORK/photo.jpg' '$WORK/raw/{}' && sync '$WORK/raw/{}'"
end=$(date +%s.%N)
RAW=$(python3 -c "print(f'{$BYTES*$FILES/1e6/($end-$start):.1f}')")
rm -rf "$WORK/raw"

key() { head -c 32 /dev/urandom | base64; }
PORT=$((20000 + RANDOM % 20000))
APP_DATA_DIR="$WORK/data" APP_JWT_SECRET=$(key) APP_MASTER_KEY=$(key) APP_BLIND_INDEX_KEY=$(key) \
  APP_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000 APP_MAX_EVIDENCE_FILES=1000 \
  ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=off RUST_LOG=warn env ${BENCH_SERVER_ENV:-} "$BIN" serve > "$WORK/server.log" 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done

# One claimant and one claim per client (sign-in is not what is measured).
for c in $(seq 1 "$CLIENTS"); do
  curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"bench$c@example.jp\",\"password\":\"correct horse battery staple\"}" "$BASE/api/v1/auth/register" >/dev/null
  token=$(curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"bench$c@example.jp\",\"password\":\"correct horse battery staple\"}" "$BASE/api/v1/auth/login" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
  claim=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"case":"benesse-2014"}' "$BASE/api/v1/claims" | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
  echo "$token $claim" >> "$WORK/clients"
done

upload() { # file-number
  line=$(sed -n "$(( ($1 - 1) % CLIENTS + 1 ))p" "$WORK/clients")
  set -- $line
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" -F kind=direct_mail -F "file=@$WORK/photo.jpg" "$BASE/api/v1/claims/$2/evidence")
  [ "$code" = 201 ] || echo "upload failed: $code" >&2
}
export -f upload; export WORK CLIENTS BASE
# Peak RSS of the upload phase: reset the high-water mark (start-up and the
# argon2 sign-ins above are not what this measures), read it afterwards.
SETUP_RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || echo "note: cannot reset the RSS high-water mark; the figure includes start-up" >&2
start=$(date +%s.%N)
seq 1 "$FILES" | xargs -P "$CLIENTS" -I{} bash -c 'upload {}'
end=$(date +%s.%N)
UP=$(python3 -c "print(f'{$BYTES*$FILES/1e6/($end-$start):.1f}')")
RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
STORED=$(find "$WORK/data/evidence/objects" -type f | wc -l)

echo "Evidence upload: $FILES files of $((BYTES/1000000)) MB ($((BYTES*FILES/1000000)) MB), $CLIENTS concurrent clients, release build, local store"
printf '%-28s %10s\n' "what" "MB/s"
printf '%-28s %10s\n' "raw copy (cp + sync)" "$RAW"
printf '%-28s %10s\n' "upload to the portal" "$UP"
echo "objects stored: $STORED of $FILES"
echo "server peak RSS during uploads: ${RSS} MB (start-up and sign-ins peaked at ${SETUP_RSS} MB)"
echo "Targets: at least half the raw copy speed; peak RSS under 150 MB."
