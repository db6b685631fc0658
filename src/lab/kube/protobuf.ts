/**
 * Reads the protobuf bodies client-go's typed clients send for built-in types (kubectl's
 * `certificate approve` PUTs the CSR as `application/vnd.kubernetes.protobuf`): the `k8s\0`
 * envelope holding a runtime.Unknown, whose raw bytes are the object. Only the messages the
 * stand-in takes in that form are described (CertificateSigningRequest, Eviction), from the field
 * numbers of k8s.io/api/certificates/v1 and apimachinery meta/v1 generated.proto.
 */

type Kind = 'string' | 'bytes' | 'int' | 'time' | 'map' | Schema;
interface Schema {
  [field: number]: [name: string, kind: Kind, repeated?: boolean];
}

const TIME: Schema = { 1: ['seconds', 'int'], 2: ['nanos', 'int'] };
const OBJECT_META: Schema = {
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  5: ['uid', 'string'],
  6: ['resourceVersion', 'string'],
  7: ['generation', 'int'],
  8: ['creationTimestamp', 'time'],
  11: ['labels', 'map'],
  12: ['annotations', 'map'],
  14: ['finalizers', 'string', true],
};
const CSR_CONDITION: Schema = {
  1: ['type', 'string'],
  2: ['reason', 'string'],
  3: ['message', 'string'],
  4: ['lastUpdateTime', 'time'],
  5: ['lastTransitionTime', 'time'],
  6: ['status', 'string'],
};
const CSR: Schema = {
  1: ['metadata', OBJECT_META],
  2: [
    'spec',
    {
      1: ['request', 'bytes'],
      2: ['username', 'string'],
      3: ['uid', 'string'],
      4: ['groups', 'string', true],
      5: ['usages', 'string', true],
      7: ['signerName', 'string'],
      8: ['expirationSeconds', 'int'],
    },
  ],
  3: ['status', { 1: ['conditions', CSR_CONDITION, true], 2: ['certificate', 'bytes'] }],
};
// kubectl drain posts its Evictions this way (k8s.io/api policy/v1 and meta/v1 DeleteOptions).
const EVICTION: Schema = { 1: ['metadata', OBJECT_META], 2: ['deleteOptions', { 1: ['gracePeriodSeconds', 'int'], 5: ['dryRun', 'string', true] }] };
const SCHEMAS: Record<string, Schema> = { 'certificates.k8s.io/v1/CertificateSigningRequest': CSR, 'policy/v1/Eviction': EVICTION };
const UNKNOWN: Schema = { 1: ['typeMeta', { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] }], 2: ['raw', 'bytes'] };

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(): number {
    let n = 0;
    for (let mul = 1; ; mul *= 128) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated protobuf');
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
    }
  }
  bytes(): Buffer {
    const len = this.varint();
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
}

function decode(buf: Buffer, schema: Schema, raw = false): any {
  const r = new Reader(buf);
  const out: any = {};
  while (r.pos < buf.length) {
    const tag = r.varint();
    const [no, wire] = [Math.floor(tag / 8), tag & 7];
    const value = wire === 0 ? r.varint() : wire === 2 ? r.bytes() : wire === 1 ? ((r.pos += 8), null) : wire === 5 ? ((r.pos += 4), null) : null;
    const f = schema[no];
    if (!f || value === null) continue;
    const [name, kind, repeated] = f;
    let v: any;
    if (kind === 'int') v = value;
    else if (kind === 'string') v = (value as Buffer).toString('utf8');
    else if (kind === 'bytes') v = raw ? value : (value as Buffer).toString('base64');
    else if (kind === 'time') {
      if ((value as Buffer).length === 0) continue; // metav1.Time writes nothing for the zero time: JSON's null
      const t = decode(value as Buffer, TIME);
      v = new Date((t.seconds ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    } else if (kind === 'map') {
      const e = decode(value as Buffer, { 1: ['key', 'string'], 2: ['value', 'string'] });
      out[name] = { ...out[name], [e.key ?? '']: e.value ?? '' };
      continue;
    } else v = decode(value as Buffer, kind);
    if (repeated) (out[name] ??= []).push(v);
    else if (v !== '') out[name] = v; // JSON omits empty strings; protobuf writes them
  }
  return out;
}

/** The JSON form of a protobuf request body, or null when the type is not one the stand-in reads. */
export function decodeProtobuf(body: Buffer): Record<string, any> | null {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\0') return null;
  const unknown = decode(body.subarray(4), UNKNOWN, true);
  const { apiVersion, kind } = unknown.typeMeta ?? {};
  const schema = SCHEMAS[`${apiVersion}/${kind}`];
  if (!schema || !unknown.raw) return null;
  return { apiVersion, kind, ...decode(unknown.raw as Buffer, schema) };
}
