#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a short while (FUZZ_SECONDS, default 15).
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z sanitizer flags.
# A longer local run: FUZZ_SECONDS=600 ./scripts/fuzz.sh native_api
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
seconds="${FUZZ_SECONDS:-15}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
cargo fuzz build -O --fuzz-dir fuzz
for t in "${targets[@]}"; do
  echo "-- fuzz $t for ${seconds}s"
  mkdir -p "fuzz/corpus/$t"
  cargo fuzz run -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done|thread)"
  # cargo fuzz exits non-zero on a crash; pipefail carries that through grep.
done
