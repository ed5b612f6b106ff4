import type { AuditLog } from '../../modules/audit/audit-log.js';
import type { TokenService } from '../../modules/auth/token-service.js';
import type { WebhookService } from '../../modules/events/webhook-service.js';
import type { BindingService } from '../../modules/registry/binding-service.js';
import type { DeviceService } from '../../modules/registry/device-service.js';
import type { NameService } from '../../modules/registry/name-service.js';

/** What the operator-plane routes may call: module service interfaces, never a store. */
export interface OperatorServices {
  readonly devices: DeviceService;
  readonly names: NameService;
  readonly bindings: BindingService;
  readonly tokens: TokenService;
  readonly webhooks: WebhookService;
  readonly audit: AuditLog;
}
