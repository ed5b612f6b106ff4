import { zero } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { idevidKey } from '../bundle-keystore.js';
import { AttestationMethod, type MethodContext, type PreparedAttestation } from './method.js';

const NONCE = /^[A-Za-z0-9_-]{43}$/;

/**
 * X.509 attestation with the IEEE 802.1AR IDevID. Proof of possession is the TLS handshake
 * itself when Node can use the key (a file key); a key in a TPM or HSM cannot sign a Node TLS
 * handshake, so it signs a single-use server nonce instead (the contract's nonce path).
 */
export class X509Attestation extends AttestationMethod {
  readonly type = 'x509' as const;

  override async prepare(ctx: MethodContext): Promise<PreparedAttestation> {
    const { bundle } = ctx;
    const chainPem = bundle.idevidChainPem;
    const label = bundle.device.idevidKeyLabel;
    if (chainPem === null || label === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: x509 needs the IDevID chain and key label' });
    const key = await idevidKey(ctx.keystore, label);
    const tlsKey = key.tlsKey();

    if (ctx.x509Proof === 'mtls' && tlsKey === undefined) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: 'mTLS proof needs a key Node TLS can use; this IDevID key is in a token' });
    }
    if (tlsKey !== undefined && ctx.x509Proof !== 'nonce') {
      // Node's secure context takes PEM; the Buffer is zeroed in dispose(). The intermediate JS
      // string from export() cannot be wiped and lives until garbage collection.
      const keyPem = Buffer.from(tlsKey.export({ type: 'pkcs8', format: 'pem' }));
      return {
        tls: { cert: chainPem, key: keyPem },
        attempt: (client, csr) => client.post('/device/v1/provision/x509', { csr }),
        dispose: () => zero(keyPem),
      };
    }
    return {
      tls: {},
      async attempt(client, csr) {
        const r = (await client.post('/device/v1/provision/nonce', {})) as { nonce?: unknown };
        if (typeof r?.nonce !== 'string' || !NONCE.test(r.nonce)) throw new FleetkeyError('INTERNAL', { detail: 'device plane answered a malformed nonce' });
        // The contract: the IDevID key signs the UTF-8 bytes of the nonce string (DER ECDSA).
        const signature = await key.sign(Buffer.from(r.nonce, 'utf8'));
        return client.post('/device/v1/provision/x509', {
          csr,
          idevidChainPem: chainPem,
          nonce: r.nonce,
          nonceSignature: signature.toString('base64'),
        });
      },
      dispose: () => undefined,
    };
  }
}
