import { request } from 'node:https';
import { createHash, type KeyObject } from 'node:crypto';
import { addSignature, buildRoot, generateTufKeyPair, softwareTufSigner, type TufSigner } from '@fleetkey/crypto';
import type { RootSigned, Signed, TargetsSigned, TufKey } from '@fleetkey/protocol';
import type { TestServer } from '../../support/test-server.js';

export interface RepoKeys {
  readonly root: TufSigner[];
  readonly targets: TufSigner;
  readonly privates: KeyObject[];
}

/** Offline keys as an operator would hold them: 3 root keys (2 ed25519, 1 ECDSA P-256), threshold 2; one targets key. */
export function offlineKeys(): RepoKeys {
  const pairs = [generateTufKeyPair('ed25519'), generateTufKeyPair('ecdsa'), generateTufKeyPair('ed25519'), generateTufKeyPair('ed25519')];
  const signers = pairs.map((p) => softwareTufSigner(p.privateKey));
  return { root: signers.slice(0, 3), targets: signers[3]!, privates: pairs.map((p) => p.privateKey) };
}

type Online = Record<'image' | 'director', Partial<Record<'targets' | 'snapshot' | 'timestamp', { keyid: string; key: TufKey }>>>;

export async function onlineKeys(t: TestServer): Promise<Online> {
  const r = await t.call('GET', '/v1/updates/online-keys');
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body as Online;
}

export function rootFor(online: Online, repo: 'image' | 'director', o: { version: number; rootSigners: TufSigner[]; threshold?: number; targets: TufSigner | null; expiresAt?: number }): RootSigned {
  const on = online[repo];
  return buildRoot({
    version: o.version,
    expiresAt: o.expiresAt ?? Date.now() + 365 * 86_400_000,
    root: { keys: o.rootSigners.map((s) => s.key), threshold: o.threshold ?? 2 },
    targets: { keys: [repo === 'image' ? o.targets!.key : on.targets!.key], threshold: 1 },
    snapshot: { keys: [on.snapshot!.key], threshold: 1 },
    timestamp: { keys: [on.timestamp!.key], threshold: 1 },
  });
}

export async function sign<T>(signed: T, signers: readonly TufSigner[]): Promise<Signed<T>> {
  let doc: Signed<T> = { signatures: [], signed };
  for (const s of signers) doc = await addSignature(doc, s);
  return doc;
}

/** Root v1 of both repositories (2 of 3 root keys) and an empty targets v1 signed by the targets key. */
export async function initRepo(t: TestServer, keys: RepoKeys): Promise<Online> {
  const online = await onlineKeys(t);
  for (const repo of ['image', 'director'] as const) {
    const root = await sign(rootFor(online, repo, { version: 1, rootSigners: keys.root, targets: keys.targets }), keys.root.slice(0, 2));
    const r = await t.call('POST', '/v1/updates/root', { body: { repo, root } });
    if (r.status !== 201) throw new Error(`root ${repo}: ${JSON.stringify(r.body)}`);
  }
  const empty: TargetsSigned = { _type: 'targets', spec_version: '1.0.31', version: 1, expires: new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'), targets: {} };
  const r = await t.call('POST', '/v1/updates/targets', { body: await sign(empty, [keys.targets]) });
  if (r.status !== 201) throw new Error(`targets: ${JSON.stringify(r.body)}`);
  return online;
}

export async function uploadArtifact(t: TestServer, content: Buffer, declared = content.length, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/v1/updates/artifacts?length=${declared}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? t.adminToken}`, 'content-type': 'application/octet-stream' },
    body: content,
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

/** Uploads, drafts, signs offline and creates the release: what `fleetkey release create --key` does. */
export async function publishRelease(t: TestServer, keys: RepoKeys, o: { model: string; version: string; content: Buffer; targetName?: string; signers?: TufSigner[] }) {
  const up = await uploadArtifact(t, o.content);
  if (up.status !== 201) throw new Error(`upload: ${JSON.stringify(up.body)}`);
  const targetName = o.targetName ?? `${o.model}-${o.version}.bin`;
  const draft = await t.call('POST', '/v1/releases/draft', { body: { model: o.model, version: o.version, targetName, sha256: up.body.sha256, length: up.body.length } });
  if (draft.status !== 200) throw new Error(`draft: ${JSON.stringify(draft.body)}`);
  const signed = await sign(draft.body.signed as TargetsSigned, o.signers ?? [keys.targets]);
  return t.call('POST', '/v1/releases', { body: { model: o.model, version: o.version, targetName, targets: signed } });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A GET over the device plane with a client certificate (what a device's updater does). */
export function deviceGet(url: string, o: { ca: string; cert?: string; key?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', ca: o.ca, ...(o.cert === undefined ? {} : { cert: o.cert, key: o.key }), headers: o.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}
