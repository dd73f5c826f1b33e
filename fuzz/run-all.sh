#!/usr/bin/env bash
# Runs every fuzz target for BUDGET_SECONDS each, one after another, and
# prints how many inputs each executed and what it found.
#
#   fuzz/run-all.sh BUDGET_SECONDS
#
# Environment:
#   FUZZ_SANITIZER  address (default; needs RUSTC_BOOTSTRAP=1 on stable, which
#                   this script sets) or none (plain stable, no ASan).
#   FUZZ_TARGETS    a space-separated subset of targets (default: all).
#
# Seeds come from ./seed-corpus.sh (run here when fuzz/corpus is missing).
# Crashes land in fuzz/artifacts/<target>/; logs in fuzz/target/logs/.
# Inputs saved under fuzz/regressions/<target>/ are replayed first, so a
# known crash is seen before new fuzzing starts.
set -uo pipefail
budget="${1:?usage: fuzz/run-all.sh BUDGET_SECONDS}"
cd "$(dirname "$0")"

sanitizer="${FUZZ_SANITIZER:-address}"
# cargo fuzz passes -Zsanitizer=... (and cargo -Z flags) that stable rustc
# accepts only with RUSTC_BOOTSTRAP=1; with --sanitizer none it needs nothing.
export RUSTC_BOOTSTRAP=1
args=(--sanitizer "$sanitizer")

[ -d corpus ] || ./seed-corpus.sh
cargo fuzz build "${args[@]}" || exit 1

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
mkdir -p target/logs
failed=0
summary=""
for target in $targets; do
    log="target/logs/$target.log"
    : > "$log"
    regressions=(regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        if ! cargo fuzz run "${args[@]}" "$target" "${regressions[@]}" >>"$log" 2>&1; then
            summary+="$target: a saved regression still fails (see $log)"$'\n'
            failed=1
            continue
        fi
    fi
    mkdir -p "corpus/$target"
    # -timeout: an input that runs 10 s is a hang worth reporting.
    if cargo fuzz run "${args[@]}" "$target" -- \
        -max_total_time="$budget" -timeout=10 -print_final_stats=1 >>"$log" 2>&1; then
        result="no crash"
    else
        result="CRASH: $(grep -m1 -o 'artifacts/[^ ]*' "$log" || echo "see $log")"
        failed=1
    fi
    execs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')"
    rate="$(grep -m1 -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    corpus_size="$(ls "corpus/$target" | wc -l)"
    summary+="$(printf '%-16s %10s execs %7s/s  %-10s corpus %5s  %s' \
        "$target" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$corpus_size" "$result")"$'\n'
done
echo
echo "budget ${budget}s per target, sanitizer $sanitizer"
printf '%s' "$summary"
exit "$failed"
