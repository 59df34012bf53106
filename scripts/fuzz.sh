#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (`make fuzz`).
#
#   scripts/fuzz.sh [webm] [controlplane]     build, then fuzz each target (default: both)
#   FUZZ_SECONDS=300 scripts/fuzz.sh webm     for longer (default 60 s per target)
#   SWIFT_BACKTRACE=enable=no .build-fuzz/fuzz-webm CRASH_FILE     replay a crash, with its stack
#
# Each module under test is compiled from Sources/ with swiftc into an instrumented static
# library and module (-sanitize=fuzzer,address), and each Fuzz/*Fuzzer.swift is linked against
# them, all into .build-fuzz/ (SwiftPM's build folders are not touched). Corpora grow in
# .build-fuzz/corpus/<target> from run to run; crash inputs land in .build-fuzz/artifacts/<target>/.
# Exits non-zero when a target crashed, leaked, ran out of memory or timed out.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SWIFTC=${SWIFTC:-swiftc}
OUT=.build-fuzz
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(webm controlplane)

# As Package.swift builds them (Swift 6 mode, the same upcoming features), plus instrumentation.
SWIFT_FLAGS=(-sanitize=fuzzer,address -O -cross-module-optimization -g -parse-as-library -swift-version 6
             -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility)

# module NAME: Sources/NAME → .build-fuzz/lib/libNAME.a and .build-fuzz/modules/NAME.swiftmodule.
module() {
    echo "== compiling $1"
    mkdir -p "$OUT/lib" "$OUT/modules"
    "$SWIFTC" "${SWIFT_FLAGS[@]}" -module-name "$1" -I "$OUT/modules" \
        -emit-module -emit-module-path "$OUT/modules/$1.swiftmodule" \
        -emit-library -static -o "$OUT/lib/lib$1.a" Sources/"$1"/*.swift
}

# fuzzer TARGET SOURCE LIBRARY...: the libFuzzer executable .build-fuzz/fuzz-TARGET.
fuzzer() {
    local target=$1
    shift
    echo "== linking fuzz-$target"
    "$SWIFTC" "${SWIFT_FLAGS[@]}" -use-ld=lld -I "$OUT/modules" "$@" -o "$OUT/fuzz-$target"
}

build() {
    case $1 in
        webm)
            module WebM
            fuzzer webm Fuzz/WebMSegmenterFuzzer.swift "$OUT/lib/libWebM.a" ;;
        controlplane)
            module ControlPlane
            module ConsoleUI
            fuzzer controlplane Fuzz/ControlPlaneFuzzer.swift "$OUT/lib/libConsoleUI.a" "$OUT/lib/libControlPlane.a" ;;
        *) echo "unknown fuzz target: $1 (webm, controlplane)" >&2; exit 2 ;;
    esac
}

# seed TARGET: fills the target's corpus with its seeds (the corpus keeps what earlier runs found).
seed() {
    local corpus=$OUT/corpus/$1
    mkdir -p "$corpus"
    case $1 in
        webm)
            # Byte 0 chooses the chunking and byte 1 seeds it (see the harness): each recording
            # whole, and in random chunks of up to 4096 bytes.
            for file in Tests/WebMTests/Fixtures/*.webm Tests/WebMTests/Fixtures/*.mkv; do
                { printf '\x0f\x00'; cat "$file"; } > "$corpus/fixture-whole-$(basename "$file")"
                { printf '\x8c\x2a'; cat "$file"; } > "$corpus/fixture-chunked-$(basename "$file")"
            done
            cp Fuzz/Seeds/webm/* "$corpus/" ;;
        controlplane)
            # Past crashers too: what once broke the console is a good place to start from.
            cp Fuzz/Seeds/controlplane/* "$corpus/"
            cp Tests/ConsoleUITests/FuzzRegressions/* "$corpus/" ;;
    esac
}

max_len() { case $1 in webm) echo $((1 << 20)) ;; controlplane) echo $((64 << 10)) ;; esac; }

# run TARGET: fuzzes for FUZZ_SECONDS; the log is .build-fuzz/logs/TARGET.log.
declare -A RESULT SECONDS_TAKEN
run() {
    local target=$1 log=$OUT/logs/$1.log artifacts=$OUT/artifacts/$1
    mkdir -p "$OUT/logs" "$artifacts"
    seed "$target"
    echo "== fuzzing $target for ${FUZZ_SECONDS}s (log: $log)"
    local start=$SECONDS status=0
    # Swift's own crash backtracer would take the signal from libFuzzer, which then writes no artifact.
    SWIFT_BACKTRACE=enable=no "$OUT/fuzz-$target" "$OUT/corpus/$target" \
        -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        -dict="Fuzz/$target.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        ${FUZZ_FLAGS:-} > "$log" 2>&1 || status=$?
    SECONDS_TAKEN[$target]=$((SECONDS - start))
    RESULT[$target]=$status
    [ "$status" = 0 ] || { echo "!! $target failed (exit $status); the end of its log:"; tail -n 40 "$log"; }
}

# summary: one line per target from libFuzzer's final stats and its last status line.
summary() {
    local failed=0
    printf '\n%-13s %8s %11s %8s %9s %9s %7s  %s\n' target seconds executions exec/s coverage features corpus result
    for target in "${TARGETS[@]}"; do
        local log=$OUT/logs/$target.log
        local execs rate cov ft corpus result
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        if [ "${RESULT[$target]}" = 0 ]; then
            result=ok
        else
            failed=1
            result="CRASHED: $(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')"
        fi
        printf '%-13s %8s %11s %8s %9s %9s %7s  %s\n' "$target" "${SECONDS_TAKEN[$target]}" "${execs:-?}" "${rate:-?}" \
            "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$result"
    done
    return $failed
}

for target in "${TARGETS[@]}"; do build "$target"; done
for target in "${TARGETS[@]}"; do run "$target"; done
summary
