#!/usr/bin/env bash
# Runs one fuzz target for a while, seeded from the golden packets and from seeds/.
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
# The corpus grows in fuzz/corpus/TARGET (not committed); crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}
seconds=${2:-300}
shift $(( $# >= 2 ? 2 : 1 ))
mkdir -p "corpus/$target"
cp -n ../tests/fixtures/packets/*.bin "corpus/$target/" 2>/dev/null || true
if [ -d "seeds/$target" ]; then
    cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
fi
# Stable Rust: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes to rustc. No sanitizer:
# the code under test is safe Rust, and AddressSanitizer would only slow it down.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$@"
