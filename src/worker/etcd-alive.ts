import { quote } from '../ssh/shell.js';

/** Where to look on a host for a member's etcd: the addresses it serves, its data dir, its config files. */
export interface AliveCheck {
  /** host:port pairs from the member's client and peer URLs (inventory, member list). */
  addrs: string[];
  /** The member's data dir: a running etcd has it on its command line (or in ETCD_DATA_DIR). */
  dataDir: string;
  /** Manifests or etcd.conf files whose --listen-*-urls / ETCD_LISTEN_*_URLS are read too, where present. */
  configs: string[];
  /** The member's host, for listen URLs on 0.0.0.0 or [::]. */
  host: string;
}

/**
 * A bash function, `medic_etcd_alive`, that answers "may etcd of this member
 * still run?": it prints why and returns 0 when something listens on one of the
 * member's client or peer addresses (from the plan and from the listen URLs in
 * its config files, whatever the port), when an etcd process runs with the
 * member's data dir, or when it cannot tell (no /proc, an etcd process whose
 * data dir it cannot read, a connect that neither opens nor is refused, the
 * processes of other users hidden or unreadable as with /proc mounted with
 * hidepid). Data dirs match by name or by the path they resolve to on the
 * host (`readlink -f`), so a symlinked data dir is still recognised.
 * It returns 1 only when it is sure that etcd is down. Fits `set -euo pipefail`.
 */
export function aliveFunction(c: AliveCheck): string {
  const list = (xs: string[]) => xs.map((x) => quote(x)).join(' ');
  return `medic_etcd_alive() {
  local addrs=(${list(c.addrs)}) a h p f pid a0 arg prev dd real found hp t
  # Each of these failing quietly would hide a listen address or a data dir: without one, it cannot tell.
  for t in timeout grep sed tr cat readlink; do command -v "$t" >/dev/null 2>&1 || { echo "may run (cannot tell: $t is missing on this host)"; return 0; }; done
  for f in ${list(c.configs)}; do
    [ -r "$f" ] || continue
    for a in $(grep -oE -- '(--listen-(client|peer)-urls=|ETCD_LISTEN_(CLIENT|PEER)_URLS=)"?[^"[:space:]]+' "$f" 2>/dev/null | sed -E 's/^[^=]*="?//' | tr ',' ' ' || true); do
      a=\${a#*://}; a=\${a%%/*}; addrs+=("$a")
    done
  done
  for hp in "\${addrs[@]}"; do
    h=\${hp%:*}; p=\${hp##*:}; h=\${h#[}; h=\${h%]}
    case "$h" in ''|0.0.0.0|::) h=${quote(c.host)} ;; esac
    case "$p" in ''|*[!0-9]*) echo "may run (cannot tell: no port in listen address $hp)"; return 0 ;; esac
    local rc=0 err=
    err=$(LC_ALL=C timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$p" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then echo "listens on $h:$p"; return 0; fi
    if [ "$rc" = 124 ]; then echo "may run (cannot tell: a connect to $h:$p neither opened nor was refused within 3 s)"; return 0; fi
    # Only a refusal says nothing listens there; a name that does not resolve or a missing tool says nothing.
    case "$err" in *'Connection refused'*) ;; *) echo "may run (cannot tell: a connect to $h:$p failed: \${err##*: })"; return 0 ;; esac
  done
  if [ ! -r /proc/self/cmdline ]; then echo "may run (cannot tell: /proc is not readable here)"; return 0; fi
  # /proc mounted with hidepid: the processes of other users (etcd's) are hidden or unreadable, and their absence says nothing.
  if [ ! -r /proc/1/cmdline ]; then echo "may run (cannot tell: the processes of other users cannot be read here, /proc is mounted with hidepid)"; return 0; fi
  dd=${quote(c.dataDir.replace(/\/+$/, ''))}
  # Data dirs compare by the path they resolve to (a symlinked data dir is the same dir), as well as by name.
  real=$(readlink -f -- "$dd" 2>/dev/null || true)
  for f in /proc/[0-9]*/cmdline; do
    pid=\${f#/proc/}; pid=\${pid%/cmdline}
    if [ ! -r "$f" ]; then
      [ -e "/proc/$pid" ] || continue
      echo "may run (cannot tell: the command line of process $pid cannot be read)"; return 0
    fi
    a0=; IFS= read -r -d '' a0 < "$f" 2>/dev/null || true
    [ "\${a0##*/}" = etcd ] || continue
    found=; prev=
    while IFS= read -r -d '' arg; do
      case "$arg" in --data-dir=*|-data-dir=*) found=\${arg#*=} ;; esac
      case "$prev" in --data-dir|-data-dir) found=$arg ;; esac
      prev=$arg
    done < <(cat "$f" 2>/dev/null || true)
    if [ -z "$found" ]; then found=$(tr '\\0' '\\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^ETCD_DATA_DIR=//p' || true); fi
    [ -n "$found" ] || { [ -e "/proc/$pid" ] && { echo "may run (cannot tell: etcd process $pid shows no data dir)"; return 0; }; continue; }
    if [ "\${found%/}" = "$dd" ]; then echo "runs (process $pid with --data-dir=$dd)"; return 0; fi
    # A relative data dir is relative to the process's working directory.
    case "$found" in /*) ;; *) found="/proc/$pid/cwd/$found" ;; esac
    if [ -n "$real" ] && [ "$(readlink -f -- "$found" 2>/dev/null || true)" = "$real" ]; then echo "runs (process $pid with --data-dir=\${found#/proc/$pid/cwd/}, which is $real like $dd)"; return 0; fi
  done
  return 1
}`;
}

/** host:port of every URL given (etcd URLs carry their port); the others are skipped. */
export function addrsOfUrls(urls: string[]): string[] {
  const out = new Set<string>();
  for (const u of urls) {
    const m = /^[a-z]+:\/\/(\[[^\]]+\]|[^/:]+):(\d+)/i.exec(u);
    if (m) out.add(`${m[1]}:${m[2]}`);
  }
  return [...out];
}
