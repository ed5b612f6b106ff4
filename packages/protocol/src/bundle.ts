import { Type, type Static } from '@sinclair/typebox';
import { ATTESTATION_TYPES } from './api/provisioning.js';

/**
 * A per-device bundle written by `fleetkey manufacture` and read by the device SDK
 * (`fleetkey agent provision --bundle DIR`). Every file is mode 0600, the directory 0700.
 *
 *   device.json            this schema
 *   ca-bundle.pem          trust for Fleetkey's device plane (root + issuing CAs)
 *   idevid-chain.pem       x509 only: the birth certificate (leaf first, then the manufacturing CA)
 *   device-key.b64         symmetric only: the per-device derived key (never the group key)
 *   keys/                  FileKeystore directory (keystore.type = 'file')
 *   machine.secret         32 random bytes protecting keys/ until a hardware-bound secret replaces it
 *   sealed/                keystore.protector = 'tpm-sealed': machine-secret.tpm, the machine secret sealed to the
 *                          device's TPM under PCR 7 (it replaces machine.secret at the first open on the device)
 *   provisioned.json       written by the SDK after provisioning: ProvisioningResult minus nothing secret
 *   operational-chain.pem  written by the SDK after provisioning
 *
 * <out>/manifest.json lists every bundle: { version, devices: [{ deviceId, dir, model, serials, idevidFingerprint? }] }.
 */
export const BundleKeystore = Type.Union([
  Type.Object({ type: Type.Literal('file'), dir: Type.Literal('keys'), protector: Type.Union([Type.Literal('machine-secret'), Type.Literal('passphrase'), Type.Literal('tpm-sealed')]) }, { additionalProperties: false }),
  Type.Object(
    { type: Type.Literal('pkcs11'), module: Type.String(), tokenLabel: Type.String(), pinFile: Type.String() },
    { additionalProperties: false },
  ),
]);

export const DeviceBundle = Type.Object(
  {
    version: Type.Literal(1),
    deviceId: Type.String(),
    model: Type.Union([Type.String(), Type.Null()]),
    serials: Type.Record(Type.String(), Type.String()),
    attestation: Type.Union(ATTESTATION_TYPES.map((a) => Type.Literal(a))),
    enrollmentId: Type.Union([Type.String(), Type.Null()]),
    /** Base URL of the device plane, e.g. https://fleet.example:8443 */
    provisioningUrl: Type.String(),
    keystore: BundleKeystore,
    /** Label of the birth-certificate key in the keystore (x509). */
    idevidKeyLabel: Type.Union([Type.String(), Type.Null()]),
    /** TPM attestation: how to reach the TPM (tpm2-tools TCTI string). */
    tpmTcti: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type DeviceBundle = Static<typeof DeviceBundle>;
