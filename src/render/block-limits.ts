/**
 * Block Kit's limits, as real Slack enforces them (it answers `invalid_blocks`).
 * The lab's fake Slack applies the same check so that a message that real Slack
 * would refuse fails in tests too.
 */
type Obj = Record<string, unknown>;

const textOf = (t: unknown) => (t && typeof t === 'object' ? String((t as Obj).text ?? '') : '');

export function blockLimitViolations(blocks: unknown): string[] {
  const out: string[] = [];
  if (!Array.isArray(blocks)) return ['blocks is not an array'];
  if (blocks.length > 50) out.push(`${blocks.length} blocks (max 50)`);
  blocks.forEach((b: Obj, i) => {
    const at = `blocks[${i}]`;
    if (typeof b.block_id === 'string' && b.block_id.length > 255) out.push(`${at}.block_id over 255`);
    switch (b.type) {
      case 'header':
        if (textOf(b.text).length > 150) out.push(`${at} header text over 150`);
        break;
      case 'section': {
        if (textOf(b.text).length > 3000) out.push(`${at} section text over 3000`);
        const fields = (b.fields as unknown[] | undefined) ?? [];
        if (fields.length > 10) out.push(`${at} has ${fields.length} fields (max 10)`);
        fields.forEach((f, j) => textOf(f).length > 2000 && out.push(`${at}.fields[${j}] over 2000`));
        if (!b.text && fields.length === 0) out.push(`${at} section without text or fields`);
        if (b.accessory) checkElement(b.accessory as Obj, `${at}.accessory`, out);
        break;
      }
      case 'actions': {
        const els = (b.elements as Obj[] | undefined) ?? [];
        if (els.length > 25) out.push(`${at} has ${els.length} elements (max 25)`);
        els.forEach((e, j) => checkElement(e, `${at}.elements[${j}]`, out));
        break;
      }
      case 'context': {
        const els = (b.elements as unknown[] | undefined) ?? [];
        if (els.length > 10) out.push(`${at} has ${els.length} elements (max 10)`);
        break;
      }
      case 'divider':
        break;
      default:
        out.push(`${at} has unknown type ${String(b.type)}`);
    }
  });
  return out;
}

function checkElement(e: Obj, at: string, out: string[]): void {
  if (typeof e.action_id === 'string' && e.action_id.length > 255) out.push(`${at}.action_id over 255`);
  if (e.type === 'button') {
    if (textOf(e.text).length > 75) out.push(`${at} button text over 75`);
    if (typeof e.value === 'string' && e.value.length > 2000) out.push(`${at} button value over 2000`);
  }
  const confirm = e.confirm as Obj | undefined;
  if (confirm) {
    if (textOf(confirm.text).length > 300) out.push(`${at}.confirm text over 300`);
    if (textOf(confirm.confirm).length > 30) out.push(`${at}.confirm confirm label over 30`);
    if (textOf(confirm.deny).length > 30) out.push(`${at}.confirm deny label over 30`);
  }
}
