#!/usr/bin/env bash
# Start a clamd for Rift with the project's offline signatures, unless one already answers.
#
# Usage: start-clamd.sh [--foreground] [--stream-max-length SIZE] [--database-dir DIR]
#                       [--no-cache] RUNTIME_DIR [PORT]
#
#   RUNTIME_DIR   where clamd.conf, the signature copy, the pid file, the log and the
#                 unix socket (RUNTIME_DIR/clamd.ctl) live; created if missing.
#   PORT          TCP port on 127.0.0.1 (default 3310).
#   --foreground  exec clamd in the foreground, for supervisord. If a clamd already
#                 answers on PORT, watch it instead and exit 1 when it stops answering,
#                 so supervisord restarts this script and it starts its own clamd.
#   --stream-max-length SIZE
#                 clamd's StreamMaxLength (default 60M: uploads are capped at 50 MB).
#   --database-dir DIR
#                 use DIR as clamd's DatabaseDirectory instead of a copy of
#                 deploy/clamav/signatures (production: freshclam's /var/lib/clamav).
#   --no-cache    turn off clamd's cache of clean files' hashes (DisableCache), for a
#                 benchmark that scans the same bytes twice and must pay for both scans.
#
# Default mode starts clamd in the background, waits until it answers PING and exits 0;
# stop it with: kill "$(cat RUNTIME_DIR/clamd.pid)".
# Environment: CLAMD_START_TIMEOUT_S (default 60) bounds the wait; CLAMD_WATCH_INTERVAL_S
# (default 15) is how often --foreground re-checks a clamd it is watching.
set -euo pipefail

readonly SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SIGNATURES_DIR="$SCRIPT_DIR/signatures"
readonly CONF_TEMPLATE="$SCRIPT_DIR/clamd.conf.in"
readonly START_TIMEOUT_S="${CLAMD_START_TIMEOUT_S:-60}"
readonly WATCH_INTERVAL_S="${CLAMD_WATCH_INTERVAL_S:-15}"
# sun_path is 108 bytes including the terminating NUL.
readonly MAX_SOCKET_PATH_BYTES=107

foreground=no
stream_max_length=60M
database_dir=""
disable_cache=no
positional=()

log() { printf 'start-clamd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while (($#)); do
    case "$1" in
        --foreground) foreground=yes ;;
        --stream-max-length) stream_max_length="${2:?--stream-max-length needs a SIZE}"; shift ;;
        --database-dir) database_dir="${2:?--database-dir needs a DIR}"; shift ;;
        --no-cache) disable_cache=yes ;;
        -h|--help) usage ;;
        -*) log "unknown option: $1"; usage ;;
        *) positional+=("$1") ;;
    esac
    shift
done
((${#positional[@]} >= 1 && ${#positional[@]} <= 2)) || usage

port="${positional[1]:-3310}"
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "PORT must be 1-65535, got '$port'"
[[ $stream_max_length =~ ^[0-9]+[KkMm]?$ ]] \
    || die "--stream-max-length must look like 60M, 1024K or 1048576, got '$stream_max_length'"

mkdir -p "${positional[0]}"
runtime_dir="$(cd "${positional[0]}" && pwd)"
readonly conf="$runtime_dir/clamd.conf"
readonly pid_file="$runtime_dir/clamd.pid"
readonly clamd_log="$runtime_dir/clamd.log"
readonly stdout_log="$runtime_dir/clamd.stdout.log"
readonly socket_path="$runtime_dir/clamd.ctl"

# Exit status 0: clamd answers PING; 1: nothing listens; 2: something else listens.
probe_port() {
    # Bash's /dev/tcp keeps this free of extra tools; nPING is the newline-delimited PING.
    local reply=""
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'nPING\n' >&3 2>/dev/null || true
    IFS= read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [[ $reply == PONG ]] || return 2
}
log_size() { if [[ -f $1 ]]; then stat -c %s "$1"; else echo 0; fi; }

# Print what clamd wrote to stdout since byte offset $1. In the foreground clamd copies its
# log there, and errors from before the log file opens appear only there.
new_output_since() { tail -c +"$(($1 + 1))" "$stdout_log" 2>/dev/null || true; }
show_new_output() {
    log "clamd's output (full log: $clamd_log):"
    new_output_since "$1" | tail -n 20 >&2
}

# Wait until clamd answers PING, failing with its new output if it exits, cannot bind or
# takes longer than START_TIMEOUT_S. Arguments: clamd's pid, the stdout log's size before.
wait_until_answering() {
    local clamd_pid="$1" stdout_log_offset="$2" deadline status
    deadline=$((SECONDS + START_TIMEOUT_S))
    until probe_port; do
        if ! kill -0 "$clamd_pid" 2>/dev/null; then
            wait "$clamd_pid" && status=0 || status=$?
            show_new_output "$stdout_log_offset"
            die "clamd exited with status $status before answering on 127.0.0.1:$port"
        fi
        # clamd keeps running on its unix socket alone when the TCP bind fails (the port was
        # taken after the check below); that is a failed start for TCP clients.
        if new_output_since "$stdout_log_offset" | grep -q 'ERROR: TCP: Cannot bind'; then
            kill "$clamd_pid" 2>/dev/null || true
            show_new_output "$stdout_log_offset"
            die "clamd could not bind 127.0.0.1:$port; stopped it"
        fi
        if ((SECONDS >= deadline)); then
            kill "$clamd_pid" 2>/dev/null || true
            show_new_output "$stdout_log_offset"
            die "clamd (pid $clamd_pid) did not answer on 127.0.0.1:$port" \
                "within ${START_TIMEOUT_S}s; stopped it"
        fi
        sleep 0.2
    done
}

probe_port && port_state=0 || port_state=$?
if ((port_state == 0)); then
    if [[ $foreground == no ]]; then
        log "clamd already answers on 127.0.0.1:$port; not starting another"
        exit 0
    fi
    log "clamd already answers on 127.0.0.1:$port; watching it instead of starting another"
    while probe_port; do sleep "$WATCH_INTERVAL_S"; done
    die "the clamd on 127.0.0.1:$port stopped answering"
fi
((port_state == 1)) || die "127.0.0.1:$port is taken by something that is not clamd (no PONG)"

# A clamd loading a large database (freshclam's takes tens of seconds) binds its sockets
# only when done; a second start meanwhile must wait for it, not start a rival.
starting_pid="$(cat "$pid_file" 2>/dev/null || true)"
if [[ $foreground == no && $starting_pid =~ ^[0-9]+$ ]] \
    && [[ "$(cat "/proc/$starting_pid/comm" 2>/dev/null)" == clamd ]]; then
    log "clamd pid $starting_pid from $runtime_dir is still starting; waiting for it"
    wait_until_answering "$starting_pid" "$(log_size "$stdout_log")"
    exit 0
fi

command -v clamd >/dev/null || PATH="$PATH:/usr/sbin"
command -v clamd >/dev/null \
    || die "clamd not found; install the Debian packages clamav-daemon clamav clamdscan"
((${#socket_path} <= MAX_SOCKET_PATH_BYTES)) \
    || die "socket path $socket_path is over $MAX_SOCKET_PATH_BYTES bytes; shorten RUNTIME_DIR"

mkdir -p "$runtime_dir/tmp"
if [[ -z $database_dir ]]; then
    # A fresh copy each start, so a signature removed from the repository is gone here too.
    database_dir="$runtime_dir/db"
    rm -rf "$database_dir"
    mkdir -p "$database_dir"
    cp "$SIGNATURES_DIR"/*.ndb "$SIGNATURES_DIR"/*.hdb "$database_dir"/
fi
[[ -d $database_dir ]] || die "database directory $database_dir does not exist"

sed_escape() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }
sed -e "s|@PORT@|$port|g" \
    -e "s|@RUNTIME_DIR@|$(sed_escape "$runtime_dir")|g" \
    -e "s|@DATABASE_DIR@|$(sed_escape "$database_dir")|g" \
    -e "s|@STREAM_MAX_LENGTH@|$stream_max_length|g" \
    -e "s|@DISABLE_CACHE@|$disable_cache|g" \
    "$CONF_TEMPLATE" >"$conf.tmp"
mv "$conf.tmp" "$conf"

if [[ $foreground == yes ]]; then
    log "exec clamd -c $conf (127.0.0.1:$port, $socket_path)"
    exec clamd -c "$conf"
fi

# setsid: clamd must outlive this script and the terminal or make target that ran it.
stdout_log_offset="$(log_size "$stdout_log")"
setsid clamd -c "$conf" >>"$stdout_log" 2>&1 </dev/null &
clamd_pid=$!

wait_until_answering "$clamd_pid" "$stdout_log_offset"
log "clamd pid $clamd_pid answers on 127.0.0.1:$port and $socket_path (pid file $pid_file)"
