#!/usr/bin/env bash
# Developer entry point: set-up included, so each command works on a fresh machine.
#   scripts/dev.sh conformance [pytest args]  run the conformance suite on the local lab
#   scripts/dev.sh test [pytest args]         run the project's own tests, failing fast:
#                                             lint, unit+plugin, Go vet/test, lab
#   scripts/dev.sh lint                       ruff and mypy --strict
# The virtualenv and the Go build caches live outside the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AIC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-aiconformance}"
VENV="${AIC_VENV:-$CACHE/venv}"
export GOTOOLCHAIN=local

log() { printf '[dev] %s\n' "$*" >&2; }

venv() {
    local stamp="$VENV/.aic-installed"
    local want
    # The install is editable: it belongs to this checkout as much as to pyproject.toml.
    want="$( (cat "$ROOT/pyproject.toml" "$ROOT/lab/pyproject.toml"; echo "$ROOT") | sha256sum | cut -c1-16)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV"
    fi
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        log "installing pytest-aiconformance, its lab and its dev tools into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        # The lab is a distribution of its own (lab/pyproject.toml); [dev] asks for it by name.
        "$VENV/bin/python" -m pip install -q -e "$ROOT/lab" -e "$ROOT[dev]"
        echo "$want" > "$stamp"
    fi
}

# The lab's real node runs pods with Debian's runc, CNI plugins, nftables and iproute2, and its
# NVIDIA modules (NVML, the device plugin) build with cgo (gcc, libc6-dev); as root on Debian
# they are installed when missing (without them the lab runs kwok nodes only).
SYSTEM_PACKAGES=(runc containernetworking-plugins nftables iproute2 gcc libc6-dev)
system_packages() {
    local missing=()
    command -v runc >/dev/null || missing+=(runc)
    [[ -x /usr/lib/cni/bridge || -x /opt/cni/bin/bridge ]] || missing+=(containernetworking-plugins)
    command -v nft >/dev/null || missing+=(nftables)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v gcc >/dev/null || missing+=(gcc libc6-dev)
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        log "missing ${missing[*]} (not root or no apt-get): the lab runs without a real node"
        return 0
    fi
    log "installing ${SYSTEM_PACKAGES[*]} (apt-get) for the lab's real node"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${SYSTEM_PACKAGES[@]}" >/dev/null
}

build_lab() {
    system_packages
    log "building the lab (cached by go.sum hash; a cold build takes about 40 minutes on 2 cores)"
    "$VENV/bin/python" -m aiconformance_lab build
}

BG_BUILD_PID=""

# The tests build in the background: the control plane first, the rest at the lowest CPU
# priority while the unit tests and the first lab tests run (a lab mostly waits), in the order
# the lab tests need them (the order of build.MODULES).  A lab test that needs a module not built yet builds it itself;
# both take the module's build lock, so each module is built once.  Cold, this overlaps most of
# the 40 minutes of compiling with tests; warm, every module is a cache hit within seconds.
build_lab_background() {
    system_packages
    log "building the lab's control plane (cached by go.sum hash)"
    "$VENV/bin/python" -m aiconformance_lab build controlplane tools
    local logfile="$CACHE/build-background.log"
    log "building the other lab modules in the background (log: $logfile)"
    # Its own process group (setsid), so that the go compilers under it stop with it.
    setsid nice -n 19 "$VENV/bin/python" -m aiconformance_lab build >"$logfile" 2>&1 &
    BG_BUILD_PID=$!
    trap 'stop_background_build' EXIT
}

stop_background_build() {
    [[ -n "$BG_BUILD_PID" ]] || return 0
    kill -TERM -- "-$BG_BUILD_PID" 2>/dev/null || true
    wait "$BG_BUILD_PID" 2>/dev/null || true
    BG_BUILD_PID=""
}

# One stage of `test`: its name, time and exit status on stderr; a failure ends the run.
stage() {
    local name="$1" rc t0=$SECONDS
    shift
    log "stage $name: $*"
    set +e
    "$@"
    rc=$?
    set -e
    if ((rc != 0)); then
        log "stage $name FAILED (exit $rc) after $((SECONDS - t0)) s; later stages not run"
        exit "$rc"
    fi
    log "stage $name passed in $((SECONDS - t0)) s"
}

# ruff, then mypy --strict over the plugin (check files included) and the lab package.
lint_all() {
    "$VENV/bin/ruff" check pytest_aiconformance lab tests conftest.py && "$VENV/bin/mypy"
}

# The lab's Go code: go vet and go test of each module holding programs of ours (with tests:
# gpusim, nodeimages); gofmt of each module whose only code is a thin main.go over an upstream
# command (compiled by the lab build); nothing to check in a module that only pins upstream
# commands (tool directives).  go vet also analyses every dependency: for the control plane's
# wrapper that is a vet of Kubernetes, 12 min cold on 2 cores (docs/MEASUREMENTS.md).
go_checks() {
    local dir name unformatted
    for dir in "$ROOT"/lab/go/*/; do
        name="lab/go/$(basename "$dir")"
        if [[ -n "$(find "$dir" -name '*_test.go' -print -quit)" ]]; then
            log "go vet ./... && go test ./... in $name"
            (cd "$dir" && go vet -trimpath ./... && go test -trimpath -count=1 ./...) || return 1
        elif [[ -n "$(find "$dir" -name '*.go' -print -quit)" ]]; then
            unformatted="$(gofmt -l "$dir")"
            if [[ -n "$unformatted" ]]; then
                log "gofmt: not formatted: $unformatted"
                return 1
            fi
            log "gofmt clean: $name (a wrapper main; compiled by the lab build)"
        else
            log "$name pins upstream commands only: no Go code of ours"
        fi
    done
}

wait_background_build() {
    local rc=0
    wait "$BG_BUILD_PID" || rc=$?
    BG_BUILD_PID=""
    ((rc == 0)) || tail -n 5 "$CACHE/build-background.log" >&2
    return "$rc"
}

cmd="${1:-}"
shift || true
cd "$ROOT"
case "$cmd" in
    conformance)
        venv
        build_lab
        exec "$VENV/bin/python" -m pytest --aic-lab -p no:cacheprovider "$@"
        ;;
    test)
        # Fail fast, cheapest first: lint, unit and plugin tests, the lab's Go code, then the
        # lab tests (tens of minutes).  The first stage that fails ends the run with its exit.
        venv
        stage lint lint_all
        build_lab_background
        stage unit+plugin "$VENV/bin/python" -m pytest -p no:cacheprovider -n 2 \
            tests/unit tests/plugin lab/tests "$@"
        stage go go_checks
        stage lab "$VENV/bin/python" -m pytest -p no:cacheprovider --durations=25 tests/lab "$@"
        stage background-build wait_background_build
        ;;
    lint)
        venv
        lint_all
        ;;
    *)
        echo "usage: scripts/dev.sh {conformance|test|lint} [pytest args]" >&2
        exit 2
        ;;
esac
