#!/usr/bin/env bash
# The version matrix: the host integration suite's short form against each
# combination of containerd, runc and runsc below, each built once (by
# hack/install-tools.sh, from the Go module proxy) into its own
# .tools/matrix/<name>/bin and reused after that.
#
#   hack/matrix.sh              every combination (make test-matrix)
#   hack/matrix.sh NAME...      the named ones (make test-matrix-ci: the oldest)
#   hack/matrix.sh -l           list the combinations
#
# Prints a table (combination, versions as the binaries report them,
# result, build and test seconds) at the end and writes it to
# .tools/matrix/results.txt; each combination's build and test logs are in
# .tools/matrix/<name>/. Exits non-zero if any combination failed. A
# combination whose runc the shim's CVE gate refuses (internal/hostprobe/
# cve.go) is reported as "refused by the gate", not as a failure: refusing
# it is the shim's job. Needs root, like the suite; `make tools` first (the
# pinned tools in .tools/bin are copied instead of rebuilt).
#
# Environment: MATRIX_RUN replaces the -run pattern; MATRIX_DIR the
# directory (default .tools/matrix); HARDENED_KEEP=1 keeps each test's
# temporary directory, as in the suite.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
matrix_dir=${MATRIX_DIR:-$root/.tools/matrix}

# The pins (DEFAULT_CONTAINERD_VERSION, DEFAULT_RUNC_VERSION,
# DEFAULT_RUNSC_VERSION) come from install-tools.sh: one place to change.
eval "$(grep -E '^DEFAULT_(CONTAINERD|RUNC|RUNSC)_VERSION=' hack/install-tools.sh)"

# The latest patch of each supported line on the Go module proxy
# (go list -m -versions github.com/containerd/containerd/v2,
# github.com/opencontainers/runc), as of 2026-12-06. The 1.5 line runs
# at the project's pin (v1.5.2) and at its latest patch, v1.5.3.
CONTAINERD_2_3=v2.3.7
CONTAINERD_2_4=$DEFAULT_CONTAINERD_VERSION
RUNC_1_3=v1.3.7
RUNC_1_4=v1.4.4
RUNC_1_5=$DEFAULT_RUNC_VERSION
RUNC_1_5_LATEST=v1.5.3
# A previous runsc: gVisor's go branch at 2026-07-15 07:31 UTC (commit
# 67db8f16ca32), which is gVisor's release-20260714.0 plus ten commits,
# seven weeks before the pin (release-20260905).
RUNSC_PREVIOUS=v0.0.0-20260715073107-67db8f16ca32

# name containerd runc runsc, the oldest first (make test-matrix-ci).
combinations=(
  "containerd2.3-runc1.3 $CONTAINERD_2_3 $RUNC_1_3 $DEFAULT_RUNSC_VERSION"
  "containerd2.3-runc1.4 $CONTAINERD_2_3 $RUNC_1_4 $DEFAULT_RUNSC_VERSION"
  "containerd2.3-runc1.5 $CONTAINERD_2_3 $RUNC_1_5 $DEFAULT_RUNSC_VERSION"
  "containerd2.3-runc1.5.3 $CONTAINERD_2_3 $RUNC_1_5_LATEST $DEFAULT_RUNSC_VERSION"
  "containerd2.4-runc1.3 $CONTAINERD_2_4 $RUNC_1_3 $DEFAULT_RUNSC_VERSION"
  "containerd2.4-runc1.4 $CONTAINERD_2_4 $RUNC_1_4 $DEFAULT_RUNSC_VERSION"
  "containerd2.4-runc1.5 $CONTAINERD_2_4 $RUNC_1_5 $DEFAULT_RUNSC_VERSION"
  "containerd2.4-runc1.5.3 $CONTAINERD_2_4 $RUNC_1_5_LATEST $DEFAULT_RUNSC_VERSION"
  "containerd2.4-runc1.5-runsc20260715 $CONTAINERD_2_4 $RUNC_1_5 $RUNSC_PREVIOUS"
)

# The short form: the shim end to end, each test with its own containerd.
# Default profile on init and exec, the pids limit, refusals, the gVisor
# route, the ctr CLI (runtime options), the runc gate, the start check
# (pass and refusal, with the combination's runc), events on containerd's
# bus, seccomp notify (runc's listener).
tests=(
  TestRestrictedByDefault
  TestExecAsRestrictedAsInit
  TestForkBombHeldByPidsLimit
  TestPrivilegedRefused
  TestGVisorAnnotation
  TestCtrCLI
  TestOldRuncRefused
  TestStartCheckPassesRunc
  TestLeakedFDRefusedAtStart
  TestEventsOnContainerdBus
  TestSeccompDenialsReported
)
run_pattern=${MATRIX_RUN:-^($(IFS='|'; echo "${tests[*]}"))\$}

log() { printf 'matrix: %s\n' "$*" >&2; }

if [ "${1:-}" = -l ]; then
  for c in "${combinations[@]}"; do echo "$c"; done
  exit 0
fi

selected=()
if (($#)); then
  for want in "$@"; do
    found=
    for c in "${combinations[@]}"; do
      if [ "${c%% *}" = "$want" ]; then selected+=("$c"); found=1; fi
    done
    [ -n "$found" ] || { log "no combination $want (hack/matrix.sh -l lists them)"; exit 2; }
  done
else
  selected=("${combinations[@]}")
fi

if [ "$(id -u)" != 0 ]; then
  log "must run as root (the integration suite does)"; exit 1
fi
go_bin=$(command -v go || echo /usr/local/go/bin/go)

# Every combination's directory (and .tools/bin) is a place to copy a
# binary of the wanted version from instead of building it again.
reuse=$root/.tools/bin
for c in "${combinations[@]}"; do reuse+=":$matrix_dir/${c%% *}/bin"; done

# version BIN: the version the binary reports.
version() {
  case "$(basename "$1")" in
    containerd) "$1" --version 2>/dev/null | awk '{print $3; exit}' ;;
    runc) "$1" --version 2>/dev/null | awk '/^runc version/ {print $3; exit}' ;;
    runsc) "$1" --version 2>/dev/null | awk '/^runsc version/ {print $3; exit}' ;;
  esac
}

rows=()
failed=0
for c in "${selected[@]}"; do
  read -r name cd_v runc_v runsc_v <<<"$c"
  dir=$matrix_dir/$name
  bin=$dir/bin
  mkdir -p "$dir"
  log "$name: containerd $cd_v, runc $runc_v, runsc $runsc_v"

  t0=$SECONDS
  TOOLS_BIN=$bin CONTAINERD_VERSION=$cd_v RUNC_VERSION=$runc_v RUNSC_VERSION=$runsc_v \
    TOOLS_REUSE_FROM=$reuse INSTALL_VM_KERNEL=0 \
    bash hack/install-tools.sh >"$dir/build.log" 2>&1
  build_rc=$?
  build_s=$((SECONDS - t0))

  test_s=0
  if ((build_rc != 0)); then
    result="FAIL (tools build, $dir/build.log)"
    failed=1
  else
    t0=$SECONDS
    # TOOLS_BIN and PATH as the Makefile sets them, for this combination.
    PATH=$bin:$PATH TOOLS_BIN=$bin HARDENED_TOOLS_BIN=$bin HARDENED_REQUIRE_INTEGRATION=1 \
      "$go_bin" test -count=1 -tags integration -timeout 30m -v -run "$run_pattern" ./integration/ \
      >"$dir/test.log" 2>&1
    test_rc=$?
    test_s=$((SECONDS - t0))
    passed=$(grep -c '^--- PASS: ' "$dir/test.log")
    skipped=$(grep -c '^--- SKIP: ' "$dir/test.log")
    ran=$(grep -cE '^--- (PASS|FAIL|SKIP): ' "$dir/test.log")
    # HARDENED_REQUIRE_INTEGRATION=1 makes "cannot run here" a failure: a
    # skip left is by design (MATRIX_RUN=. includes the VM-only cases).
    if ((test_rc == 0 && passed > 0)); then
      result="pass ($passed/$ran tests"
      if ((skipped)); then result+=", $skipped skipped"; fi
      result+=")"
    elif grep -q "runc ${runc_v#v} has known container escapes" "$dir/test.log"; then
      # The shim refused the combination's runc, by design.
      result="refused by the gate (runc ${runc_v#v}: internal/hostprobe/cve.go)"
    else
      fails=$(grep -E '^--- FAIL: ' "$dir/test.log" | awk '{print $3}' | paste -sd, -)
      result="FAIL ($passed/$ran passed${fails:+; failed: $fails}; $dir/test.log)"
      failed=1
    fi
  fi
  rows+=("$name|$(version "$bin/containerd")|$(version "$bin/runc")|$(version "$bin/runsc")|$result|$build_s|$test_s")
  log "$name: $result (build ${build_s}s, tests ${test_s}s)"
done

# runsc built with `go install` reports no version (VERSION_MISSING): say
# which module version each directory has.
table=$(
  {
    echo "combination|containerd|runc|runsc|result|build s|test s"
    for r in "${rows[@]}"; do
      IFS='|' read -r name cdv rv sv res bs ts <<<"$r"
      if [ "$sv" = VERSION_MISSING ] || [ -z "$sv" ]; then
        sv=$(cat "$matrix_dir/$name/bin/.runsc.version" 2>/dev/null)
      fi
      echo "$name|$cdv|$rv|$sv|$res|$bs|$ts"
    done
  } | column -t -s '|'
)
results=$matrix_dir/results.txt
{
  echo "# hack/matrix.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -sr), cgroup $(if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi), $("$go_bin" version | awk '{print $3}')"
  echo "# tests (-run): $run_pattern"
  echo "$table"
} >"$results"
echo
cat "$results"
echo
if ((failed)); then
  log "FAILED: see the logs named above ($results)"
  exit 1
fi
log "every combination passed or was refused by the gate ($results)"
