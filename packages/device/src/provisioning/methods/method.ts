import { FleetkeyError, type AttestationType } from '@fleetkey/protocol';
import type { Keystore } from '../../keystore/keystore.js';
import type { LoadedBundle } from '../bundle.js';
import type { DevicePlaneClient, DevicePlaneTls } from '../device-plane-client.js';

export interface MethodContext {
  readonly bundle: LoadedBundle;
  /** Open for the whole run, except for TPM bundles (closed before the TPM is driven directly). */
  readonly keystore: Keystore;
  readonly now: () => Date;
  /** x509 only: how to prove possession of the IDevID key. */
  readonly x509Proof: 'auto' | 'mtls' | 'nonce';
}

/** One prepared attestation: TLS client material, and one complete attempt (repeatable). */
export interface PreparedAttestation {
  /** Client certificate and key for the device plane's TLS, when the method authenticates there. */
  readonly tls: Omit<DevicePlaneTls, 'ca'>;
  /** One full exchange ending with the CSR; returns the raw 2xx body. Called again on transient failure. */
  attempt(client: DevicePlaneClient, csrPem: string): Promise<unknown>;
  /** Zeroes what `prepare` read (keys, PEM exports). Called once, success or not. */
  dispose(): void;
}

/**
 * One attestation method, as step-ca's provisioner interface: every method implements `prepare`;
 * the base refuses, so a method registered without its implementation fails closed.
 */
export abstract class AttestationMethod {
  abstract readonly type: AttestationType;
  /** Whether the keystore must be closed before `prepare` (the method drives the TPM itself). */
  readonly releasesKeystore: boolean = false;

  prepare(_ctx: MethodContext): Promise<PreparedAttestation> {
    return Promise.reject(new FleetkeyError('INTERNAL', { detail: `attestation ${this.type} is not implemented` }));
  }
}
