#!/usr/bin/env bash
# Roster import benchmark (PostgreSQL): generate a synthetic notice roster of
# BENCH_ROWS lines (default 10,000,000), time a plain `COPY` of the same file
# into an unindexed table, then `app roster import` (parse, normalise, four
# HMACs per line, spill, sort into buckets, COPY) into a fresh database,
# and the verification lookup's latency percentiles. Prints the figures.
#   bash bench/roster.sh     (BENCH_ROWS, BENCH_PG=postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portal-target}"
ROWS=${BENCH_ROWS:-10000000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
cargo build --release -q -p app --features dev   # the `app dev …` tools
BIN="$CARGO_TARGET_DIR/release/app"
WORK=$(mktemp -d)
DB="portal_bench_$(python3 -c 'import uuid;print(uuid.uuid4().hex)')"
cleanup() { psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
psql -q "$PG/postgres" -c "CREATE DATABASE $DB" >/dev/null

echo "generating $ROWS lines…" >&2
"$BIN" dev gen-roster --rows "$ROWS" --seed 1 --out "$WORK/roster.csv"
SIZE=$(stat -c %s "$WORK/roster.csv")

now() { date +%s.%N; }
# 1. A plain COPY of the same file, through the client like the import.
psql -q "$PG/$DB" -c "CREATE TABLE raw_roster (registration_code text, kana_name text, birth_date text, postal_code text, phone text)"
start=$(now)
psql -q "$PG/$DB" -c "\copy raw_roster FROM '$WORK/roster.csv' WITH (FORMAT csv, HEADER true)"
end=$(now)
RAW=$(python3 -c "print(f'{$ROWS/($end-$start):.0f}')")
RAW_S=$(python3 -c "print(f'{$end-$start:.1f}')")
psql -q "$PG/$DB" -c "DROP TABLE raw_roster"

# 2. The portal's import (migrations and seed run first; only the import is timed).
key() { head -c 32 /dev/urandom | base64; }
export APP_DATA_DIR="$WORK/data" DATABASE_URL="$PG/$DB" APP_JWT_SECRET=$(key) APP_MASTER_KEY=$(key) APP_BLIND_INDEX_KEY=$(key) RUST_LOG=warn
"$BIN" audit verify >/dev/null   # migrate and seed outside the timed part
start=$(now)
"$BIN" roster import --case benesse-2014 "$WORK/roster.csv" 2> "$WORK/import.err" | tee "$WORK/import.out" >&2
end=$(now)
IMPORT=$(python3 -c "print(f'{$ROWS/($end-$start):.0f}')")
IMPORT_S=$(python3 -c "print(f'{$end-$start:.1f}')")

# 3. The verification lookup against the imported roster.
LOOKUP=$("$BIN" dev bench-lookup --case benesse-2014 --rows "$ROWS" --seed 1 --samples "${BENCH_SAMPLES:-4000}")

echo "Roster import: $ROWS lines, $((SIZE/1000000)) MB, PostgreSQL $(psql -tA "$PG/$DB" -c 'show server_version'), $(nproc) cores"
printf '%-44s %12s %10s\n' "what" "lines/s" "seconds"
printf '%-44s %12s %10s\n' "plain COPY of the file (psql \\copy)" "$RAW" "$RAW_S"
printf '%-44s %12s %10s\n' "app roster import (hash, sort, COPY)" "$IMPORT" "$IMPORT_S"
echo "ratio: $(python3 -c "print(f'{$IMPORT/$RAW:.2f}')") of the plain COPY (target: at least 0.5)"
echo "$LOOKUP (target: p99 under 1 ms)"
