import { join } from 'node:path';
import { parseDuration } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { FleetkeyConfig } from '../../config/config-schema.js';
import type { Clock } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { EventBus } from '../events/event-bus.js';
import type { DeviceService } from '../registry/device-service.js';
import { Authorities, publicUrlsUnder } from './authorities.js';
import { caKeystoreFor } from './ca-keystore.js';
import { CertificateService } from './certificate-service.js';
import { CrlService } from './crl-service.js';
import { OcspResponder } from './ocsp-responder.js';
import { RevocationView } from './revocation-view.js';
import { loadTlsIdentity, type TlsIdentity } from './tls-identity.js';

export interface CaModule {
  readonly authorities: Authorities;
  readonly certificates: CertificateService;
  readonly revocations: RevocationView;
  readonly crl: CrlService;
  readonly ocsp: OcspResponder;
  readonly tls: TlsIdentity;
  /** Builds issuer templates for the public URL (CRL, OCSP, CA certificates) and starts CRL upkeep. */
  start(publicUrl: string): void;
  close(): Promise<void>;
}

const ms = (d: string): number => parseDuration(d) ?? Number.NaN;

export async function createCaModule(deps: {
  store: Store;
  uow: UnitOfWork;
  bus: EventBus;
  clock: Clock;
  config: FleetkeyConfig;
  masterKey: Buffer;
  logger: Logger;
  devices: DeviceService;
  bootstrapContext: OpContext;
}): Promise<CaModule> {
  const { store, uow, bus, clock, config } = deps;
  const keyDir = join(config.dataDir, 'ca');
  const keystore = caKeystoreFor(config, deps.masterKey);
  // CA certificates are signed before the server listens: they name the root CRL under the
  // configured public URL, else the configured operator listener.
  const host = config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host;
  const bootstrapUrls = publicUrlsUnder(config.ca.publicUrl ?? `http://${host}:${config.http.port}`);
  const authorities = new Authorities(store, uow, keystore, clock, config.ca.curve, keyDir, bootstrapUrls, { validityMs: ms(config.ca.rootCrlValidity) });
  await authorities.bootstrap(deps.bootstrapContext);
  await authorities.load();
  await authorities.ensureRootCrl(deps.bootstrapContext);

  const policy = { defaultValidityMs: ms(config.ca.defaultValidity), renewalGraceMs: ms(config.ca.renewalGrace) };
  const certificates = new CertificateService(store, uow, authorities, clock, policy);
  const revocations = new RevocationView();
  await revocations.load(store);
  const crl = new CrlService(store, authorities, clock, ms(config.ca.crlInterval), deps.logger);
  const ocsp = new OcspResponder(store, authorities, clock, ms(config.ca.crlInterval));

  // Revoking or retiring a device revokes its certificates in the same transaction.
  deps.devices.onStatusChange(async (w, deviceId, _from, to) => {
    if (to === 'revoked') await certificates.revokeAllForDevice(w, deviceId, 'unspecified');
    if (to === 'retired') await certificates.revokeAllForDevice(w, deviceId, 'cessationOfOperation');
  });
  // Committed certificate changes reach the in-memory view (and through it the gateway) and the CRL.
  const unsubscribe = bus.subscribe((e) => {
    const p = e.payload as { serial?: string; deviceId?: string; issuerId?: string; graceUntil?: string };
    if (p.serial === undefined || p.deviceId === undefined) return;
    if (e.type === 'certificate.revoked') {
      revocations.apply({ serial: p.serial, deviceId: p.deviceId, status: 'revoked', graceUntil: null, at: e.createdAt });
      if (p.issuerId !== undefined) void crl.schedule(p.issuerId);
    } else if (e.type === 'certificate.superseded') {
      revocations.apply({ serial: p.serial, deviceId: p.deviceId, status: 'superseded', graceUntil: Date.parse(p.graceUntil ?? '') });
    }
  });

  const tls = await loadTlsIdentity(keyDir, deps.masterKey, authorities, config.ca.tlsDnsNames, clock.now());
  return {
    authorities,
    certificates,
    revocations,
    crl,
    ocsp,
    tls,
    start: (publicUrl) => {
      authorities.setPublicUrls(publicUrlsUnder(publicUrl));
      crl.start();
    },
    close: async () => {
      unsubscribe();
      await crl.stop();
      await authorities.close();
    },
  };
}
