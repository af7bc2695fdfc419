#!/bin/bash
# A private Docker Engine API for machines without Docker: Debian's podman serving the API on a
# socket of its own, with its storage, configuration and base images in one temp directory.
#
#   eval "$(docker/podman-engine.sh start)"     # prepares, starts, prints: export DOCKER_HOST=...
#   docker/podman-engine.sh status              # is it answering? (exit 0 / 1)
#   docker/podman-engine.sh stop                # stops the service, removes everything it made
#
# Why each setting (all measured on Debian 12 machines without systemd, cgroup v1):
#   - runtime runc: crun 1.8 fails to start containers here;
#   - default_ulimits pinned to the hard limit: podman's defaults are above it and every start fails;
#   - docker.io blocked and no search registries: no pull is ever attempted, builds use local bases;
#   - base images from Debian's archive (mmdebstrap | podman import), tagged as Docker Hub's
#     debian:<suite> so the Dockerfiles build unchanged; which suites is read from the
#     Dockerfiles' own `FROM debian:<suite>` lines, and a suite's -updates and -security parts
#     are added only where the archive has them (unstable has neither);
#   - one service per socket: `start` reuses a live service instead of starting a second one;
#   - CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF point podman at the
#     temp directory only, so the machine's /etc/containers and /var/lib/containers stay untouched.
#
# Environment:
#   SSHSIM_ENGINE_DIR   state directory (default ${TMPDIR:-/tmp}/sshsim-podman)
#   SSHSIM_ENGINE_BASES Debian suites to import as base images (default: those the Dockerfiles
#                       next to this script start FROM, e.g. "bullseye bookworm trixie sid")
#   SSHSIM_DEBIAN_MIRROR  archive to build the bases from (default: the machine's own Debian
#                       archive, read from its apt sources by sshsim's simulator/builds/aptsources.py)
#   SSHSIM_PYTHON       the Python that runs that reader (default: python3)
#   SSHSIM_ENGINE_NO_INSTALL=1  never apt-get install missing tools (fail instead)
set -euo pipefail

DIR="${SSHSIM_ENGINE_DIR:-${TMPDIR:-/tmp}/sshsim-podman}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The Debian suites the Dockerfiles build on (one fact, kept in the Dockerfiles).
dockerfile_suites() {
    sed -nE 's/^FROM[[:space:]]+debian:([a-z]+)([[:space:]].*)?$/\1/p' "$HERE"/Dockerfile.* 2>/dev/null | sort -u | tr '\n' ' '
}
BASES="${SSHSIM_ENGINE_BASES:-$(dockerfile_suites)}"
SOCK="$DIR/podman.sock"
PIDFILE="$DIR/service.pid"

say() { echo "podman-engine: $*" >&2; }
die() { say "$*"; exit 1; }

# The Debian archive this machine's apt uses: sshsim's own reader of the apt sources (one rule,
# the one `sshsim build-sshd` uses; it honours $SSHSIM_DEBIAN_MIRROR), from this source tree or
# the installed package. Empty when there is none: the base build then says what to set.
machine_mirror() {
  PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" "${SSHSIM_PYTHON:-python3}" -c \
    'from simulator.builds.aptsources import debian_mirror; print(debian_mirror()[0])' 2>/dev/null || true
}
MIRROR="$(machine_mirror)"

podman_env() {
    export CONTAINERS_CONF="$DIR/containers.conf"
    export CONTAINERS_STORAGE_CONF="$DIR/storage.conf"
    export CONTAINERS_REGISTRIES_CONF="$DIR/registries.conf"
}

pm() {
    podman_env
    podman --root "$DIR/storage" --runroot "$DIR/runroot" "$@"
}

service_alive() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

api_answers() {
    # The Engine API's ping: "OK" from a live service.
    [[ -S "$SOCK" ]] && [[ "$(curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" == "OK" ]]
}

ensure_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v curl >/dev/null || missing+=(curl)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ "${SSHSIM_ENGINE_NO_INSTALL:-}" == 1 ]] || ! command -v apt-get >/dev/null; then
        die "missing ${missing[*]}: install them (apt-get install --no-install-recommends podman runc mmdebstrap curl)"
    fi
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_config() {
    local nofile
    nofile="$(ulimit -Hn)"
    [[ "$nofile" == unlimited ]] && nofile=1048576
    mkdir -p "$DIR/storage" "$DIR/runroot" "$DIR/tmp" "$DIR/libpod" "$DIR/volumes" "$DIR/net"
    cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$DIR/events.log"
tmp_dir = "$DIR/tmp"
static_dir = "$DIR/libpod"
volume_path = "$DIR/volumes"

[network]
network_config_dir = "$DIR/net"
EOF
    cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/runroot"
EOF
    cat >"$DIR/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"

[[registry]]
location = "docker.io"
blocked = true
EOF
}

# Does the archive at $1 serve suite $2? (its signed index answers)
archive_has() {
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$1/dists/$2/InRelease")" == 200 ]]
}

# The date after which apt refuses the suite's index (its Valid-Until), in seconds; empty if none.
index_valid_until() {
    local stamp
    stamp="$(curl -s --max-time 20 "$1/dists/$2/InRelease" | sed -nE 's/^Valid-Until:[[:space:]]*//p' | head -n 1)"
    [[ -n "$stamp" ]] && date -d "$stamp" +%s 2>/dev/null
    return 0
}

import_bases() {
    local suite tag components until expired
    for suite in $BASES; do
        tag="docker.io/library/debian:$suite"
        if pm image exists "$tag"; then
            continue
        fi
        [[ -n "$MIRROR" ]] || die "no Debian archive in this machine's apt sources: set SSHSIM_DEBIAN_MIRROR"
        say "building base image debian:$suite from the Debian archive"
        components=("deb $MIRROR $suite main")
        # A release's -updates and -security parts, where the archive has them (unstable has
        # neither). The security archive sits beside the main one (…/debian -> …/debian-security).
        if archive_has "$MIRROR" "$suite-updates"; then
            components+=("deb $MIRROR $suite-updates main")
        fi
        if archive_has "${MIRROR%/debian}/debian-security" "$suite-security"; then
            components+=("deb ${MIRROR%/debian}/debian-security $suite-security main")
        fi
        # A mirror that is a frozen copy serves unstable's index past its Valid-Until (a week):
        # apt refuses it. Then, and only then, the base (and so the Dockerfile's apt-get update)
        # accepts an expired index; its signature is still checked.
        expired=()
        until="$(index_valid_until "$MIRROR" "$suite")"
        if [[ -n "$until" ]] && (( until < $(date +%s) )); then
            say "the archive's index of $suite expired on $(date -u -d "@$until" +%F): accepting it for this base (signatures are still checked)"
            # shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook, not for this shell
            expired=(--aptopt='Acquire::Check-Valid-Until "false"'
                     --customize-hook='echo "Acquire::Check-Valid-Until \"false\";" >"$1/etc/apt/apt.conf.d/99sshsim-expired-index"')
        fi
        # shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook, not for this shell
        mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
            --aptopt='Acquire::Retries "3"' "${expired[@]}" \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
            "$suite" "$DIR/tmp/base-$suite.tar" "${components[@]}" ||
            { rm -f "$DIR/tmp/base-$suite.tar"; die "mmdebstrap could not build debian:$suite from $MIRROR"; }
        # Imported only once whole: a failed build must not leave a tag that looks like a base.
        pm import --quiet "$DIR/tmp/base-$suite.tar" "$tag" >/dev/null
        rm -f "$DIR/tmp/base-$suite.tar"
    done
}

start_service() {
    if service_alive; then
        api_answers && return 0
        die "a podman service (pid $(cat "$PIDFILE")) owns $SOCK but does not answer; run '$0 stop' first"
    fi
    rm -f "$SOCK"
    podman_env
    # setsid: the service must outlive this script and not get the terminal's Ctrl-C.
    setsid podman --root "$DIR/storage" --runroot "$DIR/runroot" \
        system service --time=0 "unix://$SOCK" >"$DIR/service.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        api_answers && return 0
        service_alive || break
        sleep 0.1
    done
    tail -5 "$DIR/service.log" >&2 || true
    die "podman system service did not answer on $SOCK"
}

cmd_start() {
    [[ $(id -u) -eq 0 ]] || die "run as root (rootful podman); as a user, start 'podman system service' yourself and set DOCKER_HOST"
    ensure_tools
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    write_config
    import_bases
    start_service
    echo "export DOCKER_HOST=unix://$SOCK"
}

cmd_stop() {
    [[ -d "$DIR" ]] || return 0
    if service_alive; then
        local pid
        pid="$(cat "$PIDFILE")"
        # Containers first (they are the service's children in podman's model), then the service.
        pm rm --all --force --time 2 >/dev/null 2>&1 || true
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    else
        pm rm --all --force --time 2 >/dev/null 2>&1 || true
    fi
    # podman's storage leaves overlay and shm mounts under the directory: unmount, deepest first.
    awk -v d="$DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$DIR"
}

cmd_status() {
    if api_answers; then
        echo "export DOCKER_HOST=unix://$SOCK"
    else
        say "no podman service answers on $SOCK"
        return 1
    fi
}

case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
