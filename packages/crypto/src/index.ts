export type { Signer, SignatureAlgorithm } from './signer/signer.js';
export { SoftwareSigner } from './signer/software-signer.js';
export * from './tpm/index.js';
