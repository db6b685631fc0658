/**
 * Lines that make a remote bash script end (with every process it started)
 * soon after its SSH session is gone.
 *
 * Seen with OpenSSH 9.2: a command run without a pty keeps running when the
 * client closes its channel (sshd waits for it) or its whole connection (the
 * command is re-parented to init); and sshd refuses the "signal" channel
 * request for a root login ("session signalling requires privilege
 * separation"). So a worker that stops a command (its run lease lapsed, a
 * timeout) cannot kill it from its side: it closes the connection, and this
 * watcher, started first by the script itself, sees the sshd process of the
 * session go and kills the script's process group (TERM, then KILL 3 s later).
 *
 * The session's sshd is the nearest ancestor whose name starts with "sshd"
 * (`sshd`, or `sshd-session` from OpenSSH 9.8); without one (another SSH
 * server, a script run by hand) the script's parent is watched. Bash builtins
 * and `sleep` only; nothing is watched where /proc or `sleep` is missing. The
 * watcher's output goes nowhere (an open stdout would keep the channel open)
 * and it is started before any lock is taken, so it never holds one.
 */
export function sessionWatchLines(): string {
  return `medic_watch_session() {
  local p=$$ c st f session= group=
  command -v sleep >/dev/null 2>&1 || return 0
  [ -r /proc/$$/stat ] || return 0
  st=$(< /proc/$$/stat); read -r -a f <<< "\${st##*) }"; group=\${f[2]}
  while [ "$p" -gt 1 ]; do
    c=$(< "/proc/$p/comm") 2>/dev/null || break
    case "$c" in sshd*) session=$p; break ;; esac
    st=$(< "/proc/$p/stat") 2>/dev/null || break
    read -r -a f <<< "\${st##*) }"; p=\${f[1]}
  done
  [ -n "$session" ] || session=$PPID
  # A group shared with the watched process is not the script's own (a script run by a program without job control): then only the script goes.
  st=$(< "/proc/$session/stat") 2>/dev/null || return 0
  read -r -a f <<< "\${st##*) }"; [ "\${f[2]}" != "$group" ] || group=
  (
    trap '' TERM
    while [ -e "/proc/$session" ]; do sleep 1; done
    if [ -n "$group" ]; then kill -TERM -- "-$group"; else kill -TERM $$; fi 2>/dev/null || true
    sleep 3
    if [ -n "$group" ]; then kill -KILL -- "-$group"; else kill -KILL $$; fi 2>/dev/null || true
  ) </dev/null >/dev/null 2>&1 &
  medic_watcher=$!
  trap 'kill -KILL "$medic_watcher" 2>/dev/null || true' EXIT
}
medic_watch_session`;
}
