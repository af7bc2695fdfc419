#!/bin/bash
# pid 1 of an sshsim sshd test container: rsyslog first, then sshd in the foreground, and both
# stopped in order (sshd, then rsyslog, which writes out what it still holds) on SIGTERM.
#
# Two ways to run:
#   - by sshsim (--target docker:IMAGE): /run/sshsim is a host directory holding the scenario's
#     sshd_config, host keys and the receiver socket; the accounts, PAM stack and homes are bind
#     mounts. Nothing is baked into the image per scenario.
#   - standalone (docker run --network host IMAGE): the packaged /etc/ssh/sshd_config, host keys
#     made on first start, the log in /var/log/auth.log.
set -u

RUN=/run/sshsim
managed=0
[[ -f "$RUN/sshd_config" ]] && managed=1

if [[ $managed == 1 ]]; then
    # Kept beside the run files too: sshsim shows them when the container ends early, even
    # after the engine has removed it.
    exec > >(tee -a "$RUN/console.log") 2>&1
fi

say() { echo "sshsim-entrypoint: $*" >&2; }
# A stop request can come at any time, even before sshd runs (pid 1 ignores signals it does not
# handle, so without this the engine would wait and then SIGKILL).
stopping=0
sshd_pid=""
# shellcheck disable=SC2317  # called by the trap
on_stop() {
    stopping=1
    [[ -n "$sshd_pid" ]] && kill -TERM "$sshd_pid" 2>/dev/null
}
trap on_stop TERM INT HUP
finish() {
    [[ $managed == 1 ]] && echo "$1" >"$RUN/exited"
    exit "$1"
}

SSHSIM_HOSTNAME="${SSHSIM_HOSTNAME:-$(cat /proc/sys/kernel/hostname)}"
SSHSIM_LOGFILE="${SSHSIM_LOGFILE:-/var/log/auth.log}"
if [[ $managed == 1 ]]; then
    SSHSIM_DEVLOG="$RUN/devlog"
    SSHSIM_FORWARD=1
    config="$RUN/sshd_config"
    # sshd logs to /dev/log; the socket itself lives where sshsim can send its flush marks.
    ln -sfn "$SSHSIM_DEVLOG" /dev/log
else
    SSHSIM_DEVLOG=/dev/log
    SSHSIM_FORWARD=0
    config=/etc/ssh/sshd_config
    ssh-keygen -A >/dev/null
fi
export SSHSIM_HOSTNAME SSHSIM_LOGFILE SSHSIM_DEVLOG SSHSIM_FORWARD

mkdir -p /run/sshd /var/spool/rsyslog "$(dirname "$SSHSIM_LOGFILE")"
chmod 0755 /run/sshd
# The login records a booted system has (systemd-tmpfiles makes them there): without utmp,
# sshd logs "logout() returned an error" after every pty session.
for record in /run/utmp:0664 /var/log/wtmp:0664 /var/log/lastlog:0664 /var/log/btmp:0660; do
    [[ -e "${record%:*}" ]] || install -m "${record#*:}" -o 0 -g 43 /dev/null "${record%:*}"
done

# "OpenSSH_9.2p1 Debian-2+deb12u7", as in the banner: the client of the same build says it in
# full; sshd -V gives only "OpenSSH_9.2" in 9.x (in full from 10.x, where Debian's server no
# longer pulls in the client), older sshd print it in their usage text.
version="$({ ssh -V; /usr/sbin/sshd -V; } 2>&1 | grep -o 'OpenSSH_[^,]*' | head -n1)"
if [[ $managed == 1 ]]; then
    echo "$version" >"$RUN/version"
    # sshsim also writes a config without the options new in SSHSIM_CONFIG_OLDER_BELOW (from its
    # feature table: PerSourcePenalties, 9.8), for servers older than that.
    below="${SSHSIM_CONFIG_OLDER_BELOW:-}"
    if [[ -f "$RUN/sshd_config.older" && "$below" =~ ^[0-9]+\.[0-9]+$ ]]; then
        IFS=._p read -r major minor _ <<<"${version#OpenSSH_}"
        IFS=. read -r below_major below_minor <<<"$below"
        if (( major < below_major || (major == below_major && minor < below_minor) )); then
            config="$RUN/sshd_config.older"
        fi
    fi
fi

rm -f "$SSHSIM_DEVLOG"
/usr/sbin/rsyslogd -n -i /run/rsyslogd.pid &
rsyslog_pid=$!
# sshd's first lines would be lost if the socket were not there yet.
for _ in $(seq 1 500); do
    [[ -S "$SSHSIM_DEVLOG" ]] && break
    kill -0 "$rsyslog_pid" 2>/dev/null || { say "rsyslogd exited at start"; finish 3; }
    sleep 0.01
done
[[ -S "$SSHSIM_DEVLOG" ]] || { say "rsyslogd did not create $SSHSIM_DEVLOG"; finish 3; }

# The scenario may ask for the listener's pid (the reference log's is 6682). A container's
# /proc/sys is read-only, so when ns_last_pid cannot be set, short-lived subshells use up the
# pids before it (about 0.3 ms each; capped so a typo cannot stall the start for minutes).
first_pid="${SSHSIM_FIRST_PID:-0}"
if [[ "$first_pid" =~ ^[0-9]+$ ]] && (( first_pid > 1 )); then
    want=$((first_pid - 1))
    if ! { echo "$want" >/proc/sys/kernel/ns_last_pid; } 2>/dev/null; then
        if (( want <= 100000 )); then
            while (( ! stopping )); do : & p=$!; wait "$p"; (( p >= want )) && break; done
        else
            say "first pid $first_pid is too far to reach in a container; sshd gets the next one"
        fi
    fi
fi

code=0
if (( ! stopping )); then
    # shellcheck disable=SC2086  # SSHSIM_SSHD_ARGS is a word list on purpose
    /usr/sbin/sshd -D -f "$config" ${SSHSIM_SSHD_ARGS:-} &
    sshd_pid=$!
fi

# sshsim holds the write end of this FIFO for as long as it runs: end of file means sshsim is
# gone (even by SIGKILL), and the container stops itself instead of running on unowned.
if [[ -p "$RUN/alive" ]]; then
    ( cat "$RUN/alive" >/dev/null 2>&1; kill -TERM $$ ) &
fi

while [[ -n "$sshd_pid" ]]; do
    wait "$sshd_pid"
    code=$?
    kill -0 "$sshd_pid" 2>/dev/null || break
done
(( code != 0 && ! stopping )) && say "sshd exited with status $code"

# rsyslogd stops reading its socket first when terminated, and what is still queued there is
# lost: sshd's last words (why it failed to start, say). A drain mark through the same socket
# shows when everything before it has been written.
token="drain-$RANDOM$RANDOM"
if logger -u "$SSHSIM_DEVLOG" -t sshsim-drain "$token" 2>/dev/null; then
    for _ in $(seq 1 300); do
        grep -qs "$token" /run/rsyslog-drained && break
        sleep 0.01
    done
fi
kill -TERM "$rsyslog_pid" 2>/dev/null
wait "$rsyslog_pid"
finish "$code"
