import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  FleetkeyError,
  NonceBody,
  NonceResult,
  NoQuery,
  ProvisioningResult,
  SymmetricProvisionBody,
  TpmChallenge,
  TpmFinishBody,
  TpmStartBody,
  X509ProvisionBody,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { RateLimitStore } from '../../context/rate-limiter.js';
import type { AuditLog } from '../../modules/audit/audit-log.js';
import { auditedErrors } from '../../context/unit-of-work.js';
import type { SymmetricMethod } from '../../modules/provisioning/attestation/symmetric-method.js';
import type { TpmMethod } from '../../modules/provisioning/attestation/tpm-method.js';
import { deviceIdOf, type X509Evidence, type X509Method } from '../../modules/provisioning/attestation/x509-method.js';
import type { ProvisioningChallenges } from '../../modules/provisioning/challenges.js';
import type { ProvisioningService } from '../../modules/provisioning/provisioning-service.js';
import type { Store } from '../../store/open-store.js';
import { peerIntermediates, peerLeaf } from '../peer-certificates.js';

export interface ProvisioningRouteDeps {
  readonly service: ProvisioningService;
  readonly x509: X509Method;
  readonly symmetric: SymmetricMethod;
  readonly tpm: TpmMethod;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** In memory on a single node; in the shared store when clustered (one budget for all nodes). */
  readonly perSource: RateLimitStore;
  readonly perDevice: RateLimitStore;
  readonly challenges: ProvisioningChallenges;
}

/**
 * Device-plane provisioning endpoints (contract: packages/protocol/src/api/provisioning.ts).
 * Everything a device is told on refusal is PROVISIONING_REFUSED or RATE_LIMITED; the reason is
 * in the audit entry the unit of work wrote.
 */
export const provisioningRoutes: FastifyPluginAsyncTypebox<{ deps: ProvisioningRouteDeps }> = async (app, { deps }) => {
  const ctx = (req: FastifyRequest, who: string): OpContext => ({ actor: { kind: 'anonymous', label: who }, requestId: req.id, remoteAddress: req.ip });

  const limit = async (req: FastifyRequest, deviceId: string | null) => {
    const now = deps.clock.now();
    // Both budgets are spent, as on a single node: a refused source still costs the identity a try.
    const [source, device] = await Promise.all([deps.perSource.take(req.ip, now), deviceId === null ? 0 : deps.perDevice.take(deviceId, now)]);
    const bySource = source === 0;
    const byDevice = device === 0;
    if (bySource && byDevice) return;
    const err = new FleetkeyError('RATE_LIMITED', { detail: bySource ? `device ${deviceId}` : `source ${req.ip}` });
    // Rate-limited refusals are audited at most once per bucket refill (the limiter is the bound).
    auditedErrors.add(err);
    throw err;
  };
  // Device-facing refusals are neutral: whatever the CA or registry said is already in the audit log.
  const neutral = (e: unknown): never => {
    if (e instanceof FleetkeyError && e.status >= 400 && e.status < 500 && e.code !== 'RATE_LIMITED' && e.code !== 'PROVISIONING_REFUSED') {
      const n = new FleetkeyError('PROVISIONING_REFUSED', { detail: `${e.code}: ${e.detail ?? ''}` });
      auditedErrors.add(n);
      throw n;
    }
    throw e;
  };

  app.post('/device/v1/provision/nonce', { schema: { querystring: NoQuery, body: NonceBody, response: { 200: NonceResult } } }, async (req) => {
    await limit(req, null);
    const { nonce, expiresAt } = await deps.challenges.issueNonce(req.ip);
    return { nonce, expiresAt: new Date(expiresAt).toISOString() };
  });

  app.post('/device/v1/provision/x509', { schema: { querystring: NoQuery, body: X509ProvisionBody, response: { 200: ProvisioningResult } } }, async (req) => {
    const b = req.body;
    const socket = req.raw.socket as TLSSocket;
    let leaf: X509Certificate | undefined = peerLeaf(socket);
    let intermediates = (): readonly X509Certificate[] => peerIntermediates(socket);
    let possession: X509Evidence['possession'] = { kind: 'tls' };
    if (leaf === undefined) {
      possession = { kind: 'none' };
      if (b.idevidChainPem !== undefined && b.nonce !== undefined && b.nonceSignature !== undefined) {
        // The nonce is consumed whatever follows: one attempt per nonce.
        const fresh = await deps.challenges.useNonce(b.nonce);
        let chain: X509Certificate[] = [];
        try {
          chain = (b.idevidChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
        } catch {
          chain = [];
        }
        leaf = chain[0];
        intermediates = () => chain.slice(1);
        possession = { kind: 'nonce', nonce: b.nonce, signature: Buffer.from(b.nonceSignature, 'base64'), fresh };
      }
    }
    const leafId = leaf === undefined ? null : deviceIdOf(leaf);
    await limit(req, leafId);
    return deps.service.provision(ctx(req, leafId === null ? `device@${req.ip}` : `device:${leafId}`), deps.x509, { leaf, intermediates, possession }, b.csr, leafId === null ? 'provisioning' : `device:${leafId}`).catch(neutral);
  });

  app.post('/device/v1/provision/symmetric', { schema: { querystring: NoQuery, body: SymmetricProvisionBody, response: { 200: ProvisioningResult } } }, async (req) => {
    await limit(req, req.body.deviceId);
    return deps.service.provision(ctx(req, `device:${req.body.deviceId}`), deps.symmetric, { deviceId: req.body.deviceId, token: req.body.token }, req.body.csr, `device:${req.body.deviceId}`).catch(neutral);
  });

  app.post('/device/v1/provision/tpm/start', { schema: { querystring: NoQuery, body: TpmStartBody, response: { 200: TpmChallenge } } }, async (req) => {
    const b = req.body;
    await limit(req, b.deviceId);
    const start = { deviceId: b.deviceId, ekPublic: Buffer.from(b.ekPublic, 'base64'), ekCertificate: b.ekCertificate === undefined ? undefined : Buffer.from(b.ekCertificate, 'base64'), akPublic: Buffer.from(b.akPublic, 'base64') };
    return (deps.service.challenge(ctx(req, `device:${b.deviceId}`), deps.tpm, start, `device:${b.deviceId}`) as Promise<TpmChallenge>).catch(neutral);
  });

  app.post('/device/v1/provision/tpm/finish', { schema: { querystring: NoQuery, body: TpmFinishBody, response: { 200: ProvisioningResult } } }, async (req) => {
    await limit(req, req.body.challengeId);
    return deps.service.provision(ctx(req, `device@${req.ip}`), deps.tpm, { challengeId: req.body.challengeId, secret: Buffer.from(req.body.secret, 'base64') }, req.body.csr, 'provisioning').catch(neutral);
  });
};
