import { attestationErrors } from './attestation.js';
import { authErrors } from './auth.js';
import { caErrors } from './ca.js';
import { clusterErrors } from './cluster.js';
import { commonErrors } from './common.js';
import { consoleErrors } from './console.js';
import { cryptoErrors } from './crypto.js';
import type { Catalogue } from './error-spec.js';
import { gatewayErrors } from './gateway.js';
import { operationsErrors } from './operations.js';
import { postureErrors } from './posture.js';
import { provisioningErrors } from './provisioning.js';
import { registryErrors } from './registry.js';
import { rolloutErrors } from './rollouts.js';
import { updatesErrors } from './updates.js';
import { updateClientErrors } from './update-client.js';

/** The catalogue by domain, in the order docs/errors.md lists them. */
export const ERROR_DOMAINS: readonly { readonly title: string; readonly errors: Catalogue }[] = [
  { title: 'Common', errors: commonErrors },
  { title: 'Registry', errors: registryErrors },
  { title: 'Operators, webhooks and audit', errors: authErrors },
  { title: 'Keys and tokens', errors: cryptoErrors },
  { title: 'Certificate authority', errors: caErrors },
  { title: 'Provisioning and attestation', errors: provisioningErrors },
  { title: 'Device gateway', errors: gatewayErrors },
  { title: 'Rollouts', errors: rolloutErrors },
  { title: 'Operations', errors: operationsErrors },
  { title: 'Update repository and releases', errors: updatesErrors },
  { title: 'Sealed storage and posture', errors: postureErrors },
  { title: 'Measured-boot attestation', errors: attestationErrors },
  { title: 'Updates on the device', errors: updateClientErrors },
  { title: 'Cluster', errors: clusterErrors },
  { title: 'Web console', errors: consoleErrors },
];
