import { createSasToken, zero } from '@fleetkey/crypto';
import { readDeviceKey } from '../bundle.js';
import { AttestationMethod, type MethodContext, type PreparedAttestation } from './method.js';

/** Long enough for a slow link, short enough that a captured token is soon worthless. */
const TOKEN_LIFETIME_MS = 5 * 60_000;

/** Symmetric-key attestation: a SAS token over `provision/<deviceId>` signed with the device key. */
export class SymmetricAttestation extends AttestationMethod {
  readonly type = 'symmetric' as const;

  override async prepare(ctx: MethodContext): Promise<PreparedAttestation> {
    const deviceId = ctx.bundle.device.deviceId;
    const key = await readDeviceKey(ctx.bundle);
    let lastExpiry = 0;
    return {
      tls: {},
      attempt(client, csr) {
        // The server burns each token (single use). The token has one-second resolution, so a
        // retry within the same second would mint the identical, already-spent token: move the
        // expiry on by at least a second per attempt.
        const expiry = Math.max(Math.floor((ctx.now().getTime() + TOKEN_LIFETIME_MS) / 1000), lastExpiry + 1);
        lastExpiry = expiry;
        const token = createSasToken({ resource: `provision/${deviceId}`, expiresAt: new Date(expiry * 1000), key });
        return client.post('/device/v1/provision/symmetric', { deviceId, token, csr });
      },
      dispose: () => zero(key),
    };
  }
}
