#!/usr/bin/env bash
# Benchmark taurus-audit against its simulator on loopback: throughput at a
# configured rate with token and AK/SK auth, behaviour under a quota four
# times lower than --rate, kill -9 and resume, and peak memory. Results are
# recorded in docs/benchmark.md. Usage: bench/run.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
bin="$PWD/target/release/taurus-audit"

cargo build --release --quiet
cargo build --release --quiet --example generate_inventory
gen="$PWD/target/release/examples/generate_inventory"

export TAURUS_AUDIT_TOKEN="bench-token-0123456789abcdef"
export HUAWEICLOUD_SDK_AK="HPUABENCHAK000000001"
export HUAWEICLOUD_SDK_SK="BenchSecretKey0123456789abcdefghijABCD"

# Starts `simulate` with the given flags; sets sim_pid and sim_url.
start_simulator() {
    local log="$work/simulate-$1.log"
    shift
    "$bin" simulate --listen 127.0.0.1:0 "$@" >"$log.out" 2>"$log" &
    sim_pid=$!
    for _ in $(seq 200); do
        [[ -s "$log.out" ]] && break
        sleep 0.05
    done
    sim_url=$(sed -n 's/^listening on //p' "$log.out")
    [[ -n "$sim_url" ]] || { echo "simulator did not start" >&2; exit 1; }
}

# Stops the simulator and prints its request counts.
stop_simulator() {
    kill -INT "$sim_pid"
    wait "$sim_pid" || true
    tail -n 1 "$work/simulate-$1.log"
}

# Runs a scan under /usr/bin/time; prints wall time, exit code and peak memory.
timed_scan() {
    local name=$1
    shift
    local start end code=0
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/$name.rss" "$bin" scan --no-progress --out-dir "$work/reports-$name" "$@" \
        >"$work/$name.out" 2>"$work/$name.err" || code=$?
    end=$(date +%s.%N)
    printf '%s: exit %s, wall %.1f s, peak RSS %s KiB\n' "$name" "$code" "$(echo "$end - $start" | bc)" "$(tail -n 1 "$work/$name.rss")"
    grep '^taurus-audit: [0-9]* instances' "$work/$name.err" || tail -n 3 "$work/$name.err"
}

"$gen" 10000 8 "$work/10k" 7
"$gen" 5000 4 "$work/5k" 8
"$gen" 100000 16 "$work/100k" 9

echo "== 10,000 rows, token, --rate 200 --concurrency 16, simulator latency 20 ms"
start_simulator token --scenario "$work/10k/scenario.json" --latency-ms 20
unset_ak() { env -u HUAWEICLOUD_SDK_AK -u HUAWEICLOUD_SDK_SK "$@"; }
timed_scan token10k --inventory "$work/10k/inventory.csv" --endpoint "$sim_url" --rate 200 --concurrency 16
stop_simulator token

echo "== 10,000 rows over 8 projects, AK/SK, --rate 200 --concurrency 16"
start_simulator aksk --scenario "$work/10k/scenario.json" --latency-ms 20
TAURUS_AUDIT_TOKEN= timed_scan aksk10k --inventory "$work/10k/inventory.csv" --endpoint "$sim_url" --rate 200 --concurrency 16
stop_simulator aksk

echo "== 5,000 rows, simulator quota 50/s, --rate 200 (ideal: 100 s)"
start_simulator quota --scenario "$work/5k/scenario.json" --latency-ms 20 --quota 50
timed_scan quota5k --inventory "$work/5k/inventory.csv" --endpoint "$sim_url" --rate 200 --concurrency 16 -v
stop_simulator quota
echo "rate changes logged: $(grep -c 'rate:' "$work/quota5k.err")"

echo "== 100,000 rows, token, --rate 2000 --concurrency 32, no latency (memory)"
start_simulator big --scenario "$work/100k/scenario.json"
timed_scan token100k --inventory "$work/100k/inventory.csv" --endpoint "$sim_url" --rate 2000 --concurrency 32
stop_simulator big

echo "== 5,000 rows, kill -9 at about half, then --resume"
start_simulator resume --scenario "$work/5k/scenario.json" --latency-ms 20
"$bin" scan --no-progress --inventory "$work/5k/inventory.csv" --endpoint "$sim_url" --rate 200 --concurrency 16 \
    --out-dir "$work/reports-killed" >/dev/null 2>"$work/killed.err" &
scan_pid=$!
while true; do
    journal=$(ls "$work"/reports-killed/*/journal.jsonl 2>/dev/null | head -n 1 || true)
    [[ -n "$journal" && $(wc -l <"$journal") -ge 2500 ]] && break
    sleep 0.05
done
kill -9 "$scan_pid"; wait "$scan_pid" || true
run_dir=$(dirname "$journal")
echo "killed with $(wc -l <"$journal") rows journaled"
timed_scan resumed --inventory "$work/5k/inventory.csv" --endpoint "$sim_url" --rate 200 --concurrency 16 --resume "$run_dir"
stop_simulator resume
echo "run folder: $run_dir"
echo "work folder: $work"
