#!/bin/sh
# shellcheck disable=SC2034  # rooted, dev_path, tool_out, tool_rc: results for the caller
# Helpers the probe scripts share. Not a probe: each script loads it from its own directory
# (in pods, the /probes ConfigMap) with
#   case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac
# Loading it only defines shell functions: it prints nothing and sets no variable, so the
# environment a probe reports (env_prefix.sh) stays as it was. POSIX sh only, and no external
# commands beyond the applets the scripts already use.

# fail MESSAGE: the caller's input is unusable; print ERROR=MESSAGE and exit 2.
fail() {
    echo "ERROR=$1"
    exit 2
}

# require NAME VALUE: fail with "NAME is not set" when VALUE is empty.
require() {
    [ -n "$2" ] || fail "$1 is not set"
}

# --- device nodes: DEVICE_GLOB, IGNORE_GLOB and DEV_ROOT -----------------------------------

# dev_settings: DEV_ROOT (default /dev, no trailing /) and IGNORE_GLOB defaulted; DEVICE_GLOB
# is required.
dev_settings() {
    DEV_ROOT=${DEV_ROOT:-/dev}
    DEV_ROOT=${DEV_ROOT%/}
    IGNORE_GLOB=${IGNORE_GLOB:-}
    require DEVICE_GLOB "${DEVICE_GLOB:-}"
}

# to_root PATH: rooted is PATH with a leading /dev replaced by $DEV_ROOT.
to_root() {
    case $1 in
        /dev) rooted=$DEV_ROOT ;;
        /dev/*) rooted=$DEV_ROOT${1#/dev} ;;
        *) rooted=$1 ;;
    esac
}

# to_dev PATH: dev_path is PATH with a leading $DEV_ROOT/ shown as /dev/ again.
to_dev() {
    case $1 in
        "$DEV_ROOT"/*) dev_path=/dev${1#"$DEV_ROOT"} ;;
        *) dev_path=$1 ;;
    esac
}

# is_ignored PATH: true when PATH (in its /dev form) matches a pattern of IGNORE_GLOB.
is_ignored() {
    set -f
    for _ignore in $IGNORE_GLOB; do
        # shellcheck disable=SC2254
        case $1 in
            $_ignore) set +f; return 0 ;;
        esac
    done
    set +f
    return 1
}

# count_device_files SHOW: count the files DEVICE_GLOB matches under DEV_ROOT into count
# (devices), chars (character devices among them) and ignored (control nodes, never devices).
# Directories never count; symlinks do. With SHOW=1 each file is also printed as
# DEVICE_FILE=/dev/... or IGNORED_FILE=/dev/...
count_device_files() {
    count=0
    chars=0
    ignored=0
    to_root "$DEVICE_GLOB"
    _old_ifs=$IFS
    IFS='
'
    for _f in $rooted; do
        IFS=$_old_ifs
        [ -e "$_f" ] || [ -L "$_f" ] || continue
        [ -d "$_f" ] && continue
        to_dev "$_f"
        if is_ignored "$dev_path"; then
            [ "$1" = 1 ] && echo "IGNORED_FILE=$dev_path"
            ignored=$((ignored + 1))
            continue
        fi
        [ "$1" = 1 ] && echo "DEVICE_FILE=$dev_path"
        count=$((count + 1))
        [ -c "$_f" ] && chars=$((chars + 1))
    done
    IFS=$_old_ifs
}

# --- the vendor tool: TOOL ------------------------------------------------------------------

# has_tool: true when $TOOL is on PATH.
has_tool() {
    command -v "$TOOL" >/dev/null 2>&1
}

# run_tool ARGS STDERR: run $TOOL with ARGS split at spaces but never glob-expanded; its
# output is left in tool_out, its exit status in tool_rc. STDERR "keep" adds the tool's
# stderr to tool_out; anything else discards it.
run_tool() {
    set -f
    if [ "$2" = keep ]; then
        # shellcheck disable=SC2086
        tool_out=$("$TOOL" $1 2>&1)
        tool_rc=$?
    else
        # shellcheck disable=SC2086
        tool_out=$("$TOOL" $1 2>/dev/null)
        tool_rc=$?
    fi
    set +f
}

# --- text -----------------------------------------------------------------------------------

# distinct_matches REGEX TEXT: each match of the extended REGEX in TEXT once, in order.
distinct_matches() {
    printf '%s\n' "$2" | grep -oE -- "$1" | awk '!seen[$0]++'
}

# count_lines TEXT: how many non-empty lines TEXT has.
count_lines() {
    printf '%s\n' "$1" | grep -c .
}
