export { acquireModule, releaseModule, ck, type Pkcs11Module, type Pkcs11Api, type Handle } from './module.js';
export { openPkcs11Token, initPkcs11Token, Pkcs11Session, type OpenTokenOptions, type InitTokenOptions } from './session.js';
export { generateEcKeyPair, findKey, type Pkcs11EcKey, type GenerateEcKeyOptions } from './ec-keys.js';
export { ecPublicKeyFromPoint, unwrapEcPoint, curveFromParams, type EcCurve } from './ec-public-key.js';
export { Pkcs11Signer, type Pkcs11SignerOptions } from './pkcs11-signer.js';
