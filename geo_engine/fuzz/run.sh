#!/usr/bin/env bash
# A short cargo-fuzz run of every parser target (run from geo_engine/, as `make fuzz`
# does). Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; with
# only a stable one, RUSTC_BOOTSTRAP=1 lets cargo-fuzz's -Z flags through.
#
#   ./fuzz/run.sh                  # every target, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=300 ./fuzz/run.sh geojson csv
#
# Seeds come from fuzz/seeds/<target> (committed; made by fuzz/make_seeds.py); the
# growing corpus lives in fuzz/corpus/<target> and crashes in fuzz/artifacts/<target>
# (both ignored by git). A crash stops the script with libFuzzer's report; replay it
# with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(shp dbf csv geojson)
fi

if cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
else
    echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi
if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 1
fi

"${cargo[@]}" fuzz build
mkdir -p fuzz/artifacts
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/artifacts/$target.log"
    echo "== $target: ${seconds}s (log: $log)"
    status=0
    "${cargo[@]}" fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|SUMMARY|panicked|Test unit written" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed (exit $status): see $log and fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "all targets ran for ${seconds}s each without a crash"
