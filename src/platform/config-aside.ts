import { sh } from '../ssh/shell.js';
import type { ConfigPlace } from './types.js';

/**
 * Lines that move a member's config (`noun`: "manifest", "etcd.conf") to the
 * copy a run keeps, refusing to overwrite an earlier copy; a config already
 * away says "already away from <config>". Every profile stops etcd by taking
 * its config away first, whatever else it does after.
 */
export function moveConfigAsideLines(c: ConfigPlace, noun: string): string[] {
  return [
    sh`if [ -e ${c.config} ]; then`,
    sh`  if [ -e ${c.configAside} ]; then echo both ${c.config} and ${c.configAside} exist, refusing to overwrite >&2; exit 3; fi`,
    sh`  mv ${c.config} ${c.configAside}; echo ${noun} moved to ${c.configAside}`,
    sh`else echo ${noun} already away from ${c.config}; fi`,
  ];
}
