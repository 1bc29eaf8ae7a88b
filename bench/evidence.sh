#!/usr/bin/env bash
# Evidence upload benchmark: 1 GiB in 10 MB files from 16 concurrent clients
# against the release binary, once with the local store and once with the S3
# store (a real S3-protocol server, s3s-fs, in its own process on loopback),
# beside a raw copy of the same bytes on the same disk in the same run; prints
# MB/s and the portal server's peak RSS for each store.
#   bash bench/evidence.sh            (BENCH_TOTAL_MB, BENCH_FILE_MB, BENCH_CLIENTS to change;
#                                      BENCH_PERF=path records a CPU profile of the server per store, path.local and path.s3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portal-target}"
TOTAL_MB=${BENCH_TOTAL_MB:-1024}
FILE_MB=${BENCH_FILE_MB:-10}
CLIENTS=${BENCH_CLIENTS:-16}
FILES=$(( (TOTAL_MB + FILE_MB - 1) / FILE_MB ))

cargo build --release -q -p app --features dev   # `app dev crypto-speed`
cargo build --release -q --example s3_server
BIN="$CARGO_TARGET_DIR/release/app"
S3BIN="$CARGO_TARGET_DIR/release/examples/s3_server"
WORK=$(mktemp -d)
PID=; S3PID=
trap 'kill $PID $S3PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

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
# CPU time in clock ticks (USER_HZ, 100 a second): the whole machine busy
# (user+nice+system+irq+softirq), and one process (user+system).
machine_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
process_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

upload() { # file-number
  line=$(sed -n "$(( ($1 - 1) % CLIENTS + 1 ))p" "$RUN/clients")
  set -- $line
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" -F kind=direct_mail -F "file=@$WORK/photo.jpg" "$BASE/api/v1/claims/$2/evidence")
  if [ "$code" = 201 ]; then echo ok >> "$RUN/ok"; else echo "upload failed: $code" >&2; fi
}
export -f upload

# run_store NAME [ENV=VALUE…]: start the portal with the extra settings, upload
# every file, and leave "MB/s peak-RSS stored setup-RSS" in $RUN/figures.
run_store() {
  local name=$1; shift
  RUN="$WORK/$name"; mkdir -p "$RUN"
  PORT=$((20000 + RANDOM % 20000))
  env APP_DATA_DIR="$RUN/data" APP_JWT_SECRET=$(key) APP_MASTER_KEY=$(key) APP_BLIND_INDEX_KEY=$(key) \
    APP_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000 APP_MAX_EVIDENCE_FILES=1000 \
    ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=off RUST_LOG=warn "$@" ${BENCH_SERVER_ENV:-} "$BIN" serve > "$RUN/server.log" 2>&1 &
  PID=$!
  BASE="http://127.0.0.1:$PORT"
  for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
  # One claimant and one claim per client (sign-in is not what is measured).
  for c in $(seq 1 "$CLIENTS"); do
    curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"bench$c@example.jp\",\"password\":\"correct horse battery staple\"}" "$BASE/api/v1/auth/register" >/dev/null
    token=$(curl -sf -H 'Content-Type: application/json' -d "{\"email\":\"bench$c@example.jp\",\"password\":\"correct horse battery staple\"}" "$BASE/api/v1/auth/login" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
    claim=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"case":"benesse-2014"}' "$BASE/api/v1/claims" | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
    echo "$token $claim" >> "$RUN/clients"
  done
  export WORK CLIENTS BASE RUN
  # Peak RSS of the upload phase: reset the high-water mark (start-up and the
  # argon2 sign-ins above are not what this measures), read it afterwards.
  local setup_rss; setup_rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
  echo 5 > "/proc/$PID/clear_refs" 2>/dev/null || echo "note: cannot reset the RSS high-water mark; the figure includes start-up" >&2
  local start end
  local perf=
  if [ -n "${BENCH_PERF:-}" ]; then perf record -q -F 499 -g -p "$PID" -o "$BENCH_PERF.$name" 2>/dev/null & perf=$!; sleep 0.5; fi
  local cpu0 proc0 cpu1 proc1
  cpu0=$(machine_busy); proc0=$(process_cpu "$PID")
  start=$(date +%s.%N)
  seq 1 "$FILES" | xargs -P "$CLIENTS" -I{} bash -c 'upload {}'
  end=$(date +%s.%N)
  cpu1=$(machine_busy); proc1=$(process_cpu "$PID")
  if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" 2>/dev/null || true; fi
  local up rss stored
  up=$(python3 -c "print(f'{$BYTES*$FILES/1e6/($end-$start):.1f}')")
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
  stored=$(cat "$RUN/ok" 2>/dev/null | wc -l)
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  local mb; mb=$(python3 -c "print($BYTES*$FILES/1e6)")
  local server_ms machine_ms
  server_ms=$(python3 -c "print(f'{($proc1-$proc0)*10/$mb:.2f}')")
  machine_ms=$(python3 -c "print(f'{($cpu1-$cpu0)*10/$mb:.2f}')")
  echo "$up $rss $stored $setup_rss $server_ms $machine_ms" > "$RUN/figures"
}

run_store local

# The S3 store, against s3s-fs in its own process, its objects on the same disk.
mkdir -p "$WORK/s3"
"$S3BIN" "$WORK/s3" > "$WORK/s3.out" 2>&1 &
S3PID=$!
for _ in $(seq 1 100); do grep -q '^endpoint=' "$WORK/s3.out" 2>/dev/null && break; sleep 0.1; done
S3_ENDPOINT=$(sed -n 's/^endpoint=//p' "$WORK/s3.out")
[ -n "$S3_ENDPOINT" ] || { echo "the S3 server did not start:" >&2; cat "$WORK/s3.out" >&2; exit 1; }
run_store s3 APP_EVIDENCE_STORE=s3 APP_S3_ENDPOINT="$S3_ENDPOINT" APP_S3_BUCKET=evidence \
  AWS_ACCESS_KEY_ID="$(sed -n 's/^access_key=//p' "$WORK/s3.out")" AWS_SECRET_ACCESS_KEY="$(sed -n 's/^secret_key=//p' "$WORK/s3.out")"
kill "$S3PID"; S3PID=

echo "Evidence upload: $FILES files of $((BYTES/1000000)) MB ($((BYTES*FILES/1000000)) MB), $CLIENTS concurrent clients, release build, $(nproc) cores"
printf '%-34s %10s %16s %8s %17s %18s\n' "what" "MB/s" "peak RSS (MB)" "stored" "server CPU ms/MB" "machine CPU ms/MB"
printf '%-34s %10s %16s %8s %17s %18s\n' "raw copy (cp + sync)" "$RAW" "-" "$FILES" "-" "-"
for store in local s3; do
  read -r up rss stored setup server_ms machine_ms < "$WORK/$store/figures"
  printf '%-34s %10s %16s %8s %17s %18s\n' "upload to the portal, $store store" "$up" "$rss" "$stored" "$server_ms" "$machine_ms"
done
echo "(start-up and sign-ins peaked at $(cut -d' ' -f4 "$WORK/local/figures") MB local, $(cut -d' ' -f4 "$WORK/s3/figures") MB s3; not part of the upload figure)"
echo "Targets: local store at least half the raw copy speed; peak RSS under 150 MB."
# What the target leaves per MB, beside what the required per-byte work costs on one core.
echo "Half the raw copy is $(python3 -c "print(f'{$RAW/2:.0f}')") MB/s: $(nproc) cores give $(python3 -c "print(f'{$(nproc)*1000/($RAW/2):.2f}')") ms of CPU per MB, for curl, the kernel and the portal together. The per-byte work every upload must do, on one core:"
"$BIN" dev crypto-speed --mb 256
