import type { Command } from './types.js';

export const help: Command = {
  name: 'help',
  usage: '/etcd help',
  summary: 'this list',
  role: 'read',
  run(_args, ctx) {
    const lines = ctx.commands.map((c) => `• \`${c.usage}\`: ${c.summary}`);
    const clusters = ctx.inventory.clusters.map((c) => `\`${c.name}\``).join(', ');
    return { kind: 'reply', text: `*etcd-medic commands*\n${lines.join('\n')}\nClusters: ${clusters}` };
  },
};
