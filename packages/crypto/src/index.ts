export type { Signer, SignatureAlgorithm } from './signer/signer.js';
export { SoftwareSigner } from './signer/software-signer.js';
export * from './tpm/index.js';
export * from './primitives/index.js';
export * from './keys/index.js';
export * from './pkcs11/index.js';
export * from './sas/index.js';
export * from './x509/validate/index.js';
export * from './pki/index.js';
