export { canonicalBytes, metadataDocument } from './canonical.js';
export { tufKeyOf, tufKeyId, publicKeyOfTuf, generateTufKeyPair } from './keys.js';
export { softwareTufSigner, tufSignerFrom, addSignature, signMetadata, type TufSigner } from './sign.js';
export { verifyThreshold, tufExpires, type RoleTrust, type ThresholdResult } from './verify.js';
export { buildRoot, type RoleSpec } from './root.js';
