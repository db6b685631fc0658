import { isMap, isSeq, parseDocument } from 'yaml';

/**
 * OpenShift 3's master-config.yaml names etcd's client URLs under
 * etcdClientInfo.urls: the API server talks to those members only.
 */

/** The client URLs master-config.yaml gives; null when it has no etcdClientInfo.urls. */
export function etcdClientUrls(text: string): string[] | null {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`master-config.yaml does not parse: ${doc.errors[0]!.message}`);
  const urls = doc.getIn(['etcdClientInfo', 'urls']);
  if (!isSeq(urls)) return null;
  return urls.items.map((i) => String((i as { value?: unknown }).value ?? i));
}

/** master-config.yaml with etcdClientInfo.urls replaced; comments and every other key as they were. */
export function withEtcdClientUrls(text: string, urls: string[]): string {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`master-config.yaml does not parse: ${doc.errors[0]!.message}`);
  if (!isMap(doc.getIn(['etcdClientInfo']))) throw new Error('master-config.yaml has no etcdClientInfo section to change');
  doc.setIn(['etcdClientInfo', 'urls'], doc.createNode(urls));
  return doc.toString();
}
