export type { Signer, SignatureAlgorithm } from './signer/signer.js';
