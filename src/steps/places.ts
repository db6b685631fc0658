import { z } from 'zod';

/**
 * One member's places on its host as a plan names them (restore-quorum-plan.ts
 * `hostPlaces`): its config and the copy a run keeps aside, its data dir and
 * where it goes aside, its URLs and the addresses its etcd may listen on.
 */
export const hostPlace = z.object({
  name: z.string(),
  host: z.string(),
  config: z.string(),
  configAside: z.string(),
  asideDir: z.string(),
  dataDir: z.string(),
  dataAside: z.string(),
  pkiDir: z.string(),
  clientHost: z.string(),
  peerUrl: z.string(),
  clientUrl: z.string(),
  /** host:port of its client and peer URLs, as planned. */
  listen: z.array(z.string()),
});
export type HostPlace = z.infer<typeof hostPlace>;

/** What a step that stops, restores or restarts one member keeps of its place. */
export const memberOnHost = hostPlace.pick({ name: true, config: true, configAside: true, asideDir: true, dataDir: true, dataAside: true, clientHost: true, peerUrl: true, listen: true });

export function onHost(p: HostPlace): z.infer<typeof memberOnHost> {
  return { name: p.name, config: p.config, configAside: p.configAside, asideDir: p.asideDir, dataDir: p.dataDir, dataAside: p.dataAside, clientHost: p.clientHost, peerUrl: p.peerUrl, listen: p.listen };
}
