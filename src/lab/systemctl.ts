import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SystemctlPaths {
  /** Unit files and their drop-ins (`/etc/systemd/system` on a real host). */
  unitDir: string;
  /** Where systemctl and the lab's UnitSupervisor exchange requests, states and job results. */
  runDir: string;
  /** The units' logs (their journal). */
  logDir: string;
}

/** Writes `systemctl` into a host's bin directory (first on its SSH sessions' PATH), with the host's paths baked in. */
export function installSystemctl(binDir: string, paths: SystemctlPaths): string {
  const file = join(binDir, 'systemctl');
  writeFileSync(file, systemctlScript(paths));
  chmodSync(file, 0o755);
  return file;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A systemctl for one lab host. It answers like systemd's for the commands
 * the bot and operators use on an etcd master, and carries out start, stop
 * and restart through the lab's UnitSupervisor (see unit-supervisor.ts for
 * the files they share), waiting for the job as systemctl does.
 */
export function systemctlScript(p: SystemctlPaths): string {
  return `#!/bin/bash
# systemctl for a lab host: requests go to the lab's unit supervisor through files.
UNIT_DIR=${q(p.unitDir)}
RUN_DIR=${q(p.runDir)}
LOG_DIR=${q(p.logDir)}
JOB_TIMEOUT=90
set -u

quiet=0 now=0 block=1 value=0 props=''
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-pager|--system|--no-legend|--full|-l|--no-ask-password|--plain) ;;
    -q|--quiet) quiet=1 ;;
    --now) now=1 ;;
    --runtime) ;;
    --no-block) block=0 ;;
    --value) value=1 ;;
    --property=*) props="\${props:+$props,}\${1#--property=}" ;;
    -p|--property) shift; props="\${props:+$props,}\${1:-}" ;;
    -p*) props="\${props:+$props,}\${1#-p}" ;;
    --*|-?) echo "systemctl: unrecognized option '$1'" >&2; exit 1 ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ \${#args[@]} -gt 0 ] || { echo "systemctl: a command is needed (this host's systemctl does not list units)" >&2; exit 1; }
verb=\${args[0]}
units=()
for a in "\${args[@]:1}"; do
  case "$a" in
    *[!A-Za-z0-9@._-]*|'') echo "Invalid unit name \\"$a\\" was escaped as \\"$a\\" (maybe you should use systemd-escape?)" >&2; exit 1 ;;
  esac
  units+=("\${a%.service}")
done

exists() { [ -f "$UNIT_DIR/$1.service" ]; }
state_of() {
  local s=''
  [ -f "$RUN_DIR/$1.state" ] && s=$(cat "$RUN_DIR/$1.state" 2>/dev/null)
  if [ -n "$s" ]; then printf '%s\\n' "$s"; else echo 'inactive dead 0'; fi
}
# \`systemctl mask --runtime\`: until the host reboots, nothing can start the unit.
masked() { [ -e "$RUN_DIR/$1.masked" ]; }
enabled() {
  local l
  for l in "$UNIT_DIR"/*.wants/"$1".service; do [ -L "$l" ] && return 0; done
  return 1
}
need_units() { [ \${#units[@]} -gt 0 ] || { echo "Too few arguments." >&2; exit 1; }; }

# A request: the want file names the job, the supervisor writes jobs/<nonce> once it is carried out.
request() {
  local f="$RUN_DIR/$1.want"
  mkdir -p "$RUN_DIR/jobs"
  printf '%s %s\\n' "$2" "$3" > "$f.$$" && mv -f "$f.$$" "$f"
}
wait_job() {
  local u=$1 n=$2 f="$RUN_DIR/jobs/$2" cur deadline=$(( $(date +%s) + JOB_TIMEOUT ))
  while [ ! -f "$f" ]; do
    # Replaced by a later request for the same unit before the supervisor took this one up, and that one is done.
    cur=$(cut -d' ' -f2 "$RUN_DIR/$u.want" 2>/dev/null)
    if [ -n "$cur" ] && [ "$cur" != "$n" ] && [ -f "$RUN_DIR/jobs/$cur" ] && [ ! -f "$f" ]; then
      echo "Job for $u.service canceled." >&2
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "Job for $u.service failed because a timeout was exceeded." >&2
      echo "See \\"systemctl status $u.service\\" and \\"journalctl -xe\\" for details." >&2
      return 1
    fi
    sleep 0.1
  done
  [ "$(head -n1 "$f")" = done ] && return 0
  tail -n +2 "$f" >&2
  return 1
}
jobs_for() {
  local v=$1 u i rc=0 n
  local -a ns=()
  need_units
  for u in "\${units[@]}"; do
    if ! exists "$u"; then
      if [ "$v" = stop ]; then echo "Failed to stop $u.service: Unit $u.service not loaded." >&2
      else echo "Failed to $v $u.service: Unit $u.service not found." >&2; fi
      exit 5
    fi
  done
  for u in "\${units[@]}"; do
    if [ "$v" != stop ] && masked "$u"; then echo "Failed to $v $u.service: Unit $u.service is masked." >&2; exit 1; fi
  done
  for u in "\${units[@]}"; do
    n="$(date +%s%N)-$$-$RANDOM"
    request "$u" "$v" "$n"
    ns+=("$n")
  done
  [ $block = 1 ] || exit 0
  for i in "\${!units[@]}"; do wait_job "\${units[$i]}" "\${ns[$i]}" || rc=1; done
  exit $rc
}

case "$verb" in
  start|stop|restart) jobs_for "$verb" ;;
  try-restart|reload-or-restart|try-reload-or-restart) jobs_for restart ;;
  is-active|is-failed)
    need_units
    rc=3; [ "$verb" = is-failed ] && rc=1
    for u in "\${units[@]}"; do
      read -r st _ _ <<<"$(state_of "$u")"
      [ $quiet = 1 ] || echo "$st"
      if [ "$verb" = is-active ] && [ "$st" = active ]; then rc=0; fi
      if [ "$verb" = is-failed ] && [ "$st" = failed ]; then rc=0; fi
    done
    exit $rc ;;
  is-enabled)
    need_units
    rc=1
    for u in "\${units[@]}"; do
      exists "$u" || { echo "Failed to get unit file state for $u.service: No such file or directory" >&2; exit 1; }
      if enabled "$u"; then e=enabled; rc=0; else e=disabled; fi
      [ $quiet = 1 ] || echo "$e"
    done
    exit $rc ;;
  enable|disable)
    need_units
    for u in "\${units[@]}"; do
      exists "$u" || { echo "Failed to $verb unit: Unit file $u.service does not exist." >&2; exit 1; }
      if [ "$verb" = enable ]; then
        if ! enabled "$u"; then
          target=$(sed -n 's/^WantedBy=[[:space:]]*\\([^[:space:]]*\\).*/\\1/p' "$UNIT_DIR/$u.service" | head -n1)
          target=\${target:-multi-user.target}
          mkdir -p "$UNIT_DIR/$target.wants"
          ln -sfn "$UNIT_DIR/$u.service" "$UNIT_DIR/$target.wants/$u.service"
          [ $quiet = 1 ] || echo "Created symlink $UNIT_DIR/$target.wants/$u.service → $UNIT_DIR/$u.service." >&2
        fi
      else
        for l in "$UNIT_DIR"/*.wants/"$u".service; do
          [ -L "$l" ] || continue
          rm -f "$l"
          [ $quiet = 1 ] || echo "Removed \\"$l\\"." >&2
        done
      fi
    done
    if [ $now = 1 ]; then [ "$verb" = enable ] && jobs_for start || jobs_for stop; fi
    exit 0 ;;
  show)
    need_units
    props=\${props:-Id,Description,LoadState,ActiveState,SubState,MainPID,UnitFileState,FragmentPath}
    first=1
    for u in "\${units[@]}"; do
      [ $first = 1 ] || echo
      first=0
      read -r st sub pid <<<"$(state_of "$u")"
      if exists "$u"; then
        load=loaded; frag="$UNIT_DIR/$u.service"
        desc=$(sed -n 's/^Description=//p' "$frag" | head -n1)
        if enabled "$u"; then ufs=enabled; else ufs=disabled; fi
      else
        load=not-found; frag=''; desc="$u.service"; ufs=''
      fi
      IFS=',' read -ra want <<<"$props"
      for k in "\${want[@]}"; do
        case "$k" in
          Id) v="$u.service" ;; Description) v=$desc ;; LoadState) v=$load ;; ActiveState) v=$st ;; SubState) v=$sub ;;
          MainPID|ExecMainPID) v=$pid ;; UnitFileState) v=$ufs ;; FragmentPath) v=$frag ;;
          *) v='' ;;
        esac
        if [ $value = 1 ]; then echo "$v"; else echo "$k=$v"; fi
      done
    done
    exit 0 ;;
  status)
    need_units
    rc=0
    for u in "\${units[@]}"; do
      exists "$u" || { echo "Unit $u.service could not be found." >&2; rc=4; continue; }
      read -r st sub pid <<<"$(state_of "$u")"
      desc=$(sed -n 's/^Description=//p' "$UNIT_DIR/$u.service" | head -n1)
      if enabled "$u"; then ufs=enabled; else ufs=disabled; fi
      dot='●'; [ "$st" = active ] || dot='○'
      echo "$dot $u.service - \${desc:-$u.service}"
      echo "     Loaded: loaded ($UNIT_DIR/$u.service; $ufs; vendor preset: disabled)"
      echo "     Active: $st ($sub)"
      [ "$pid" = 0 ] || echo "   Main PID: $pid ($(cat /proc/$pid/comm 2>/dev/null || echo '?'))"
      if [ -f "$LOG_DIR/$u.log" ]; then echo; tail -n 10 "$LOG_DIR/$u.log"; fi
      [ "$st" = active ] || { [ $rc = 0 ] && rc=3; }
    done
    exit $rc ;;
  mask|unmask)
    need_units
    mkdir -p "$RUN_DIR"
    for u in "\${units[@]}"; do
      if [ "$verb" = mask ]; then : > "$RUN_DIR/$u.masked"; [ $quiet = 1 ] || echo "Created symlink /run/systemd/system/$u.service → /dev/null." >&2
      elif masked "$u"; then rm -f "$RUN_DIR/$u.masked"; [ $quiet = 1 ] || echo "Removed \\"/run/systemd/system/$u.service\\"." >&2; fi
    done
    exit 0 ;;
  cat)
    need_units
    for u in "\${units[@]}"; do
      exists "$u" || { echo "No files found for $u.service." >&2; exit 1; }
      echo "# $UNIT_DIR/$u.service"; cat "$UNIT_DIR/$u.service"
      for d in "$UNIT_DIR/$u.service.d"/*.conf; do [ -f "$d" ] || continue; echo; echo "# $d"; cat "$d"; done
    done
    exit 0 ;;
  daemon-reload|reset-failed|daemon-reexec) exit 0 ;;
  *) echo "Unknown command verb $verb." >&2; exit 1 ;;
esac
`;
}
