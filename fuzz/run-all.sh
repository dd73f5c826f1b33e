#!/usr/bin/env bash
# Runs every fuzz target for BUDGET_SECONDS each, one after another, and
# prints how many inputs each executed and what it found.
#
#   fuzz/run-all.sh BUDGET_SECONDS
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none. cargo fuzz passes -Z flags
#                   (-Zsanitizer=address) that stable rustc takes only with
#                   RUSTC_BOOTSTRAP=1, which this script sets; `none` needs
#                   no -Z flag at all.
#   FUZZ_TARGETS    a space-separated subset of targets (default: all).
#
# Seeds come from ./seed-corpus.sh (run here when fuzz/corpus is missing).
# Crashes land in fuzz/artifacts/<target>/, logs in fuzz/target/logs/.
# Inputs saved under fuzz/regressions/<target>/ are replayed first.
#
# The targets are built once, then their binaries run directly (what
# `cargo fuzz run` does after building), so that a change elsewhere in the
# tree during the run does not rebuild or break it. If the root crate does
# not build, the parser and session targets still run and replay is skipped.
set -uo pipefail
budget="${1:?usage: fuzz/run-all.sh BUDGET_SECONDS}"
cd "$(dirname "$0")"

sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1
bin_dir="target/x86_64-unknown-linux-gnu/release"

[ -d corpus ] || ./seed-corpus.sh
all_targets="$(cargo fuzz list)"
skipped=""
if ! cargo fuzz build --sanitizer "$sanitizer"; then
    echo "build with the replay target failed; building the others alone" >&2
    cargo fuzz build --sanitizer "$sanitizer" --no-default-features || exit 1
    skipped="replay"
fi

targets="${FUZZ_TARGETS:-$all_targets}"
mkdir -p target/logs
failed=0
summary=""
for target in $targets; do
    if [ "$target" = "$skipped" ]; then
        summary+="$(printf '%-16s skipped: the root crate does not build' "$target")"$'\n'
        failed=1
        continue
    fi
    bin="$bin_dir/$target"
    log="target/logs/$target.log"
    : > "$log"
    mkdir -p "corpus/$target" "artifacts/$target"
    regressions=(regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        if ! "$bin" "${regressions[@]}" >>"$log" 2>&1; then
            summary+="$target: a saved regression still fails (see $log)"$'\n'
            failed=1
            continue
        fi
    fi
    # -timeout: an input that runs 10 s is a hang worth reporting.
    if "$bin" -artifact_prefix="artifacts/$target/" -max_total_time="$budget" \
        -timeout=10 -print_final_stats=1 "corpus/$target" >>"$log" 2>&1; then
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
