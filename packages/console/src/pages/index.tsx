import type { Role } from '@fleetkey/protocol';
import { useRoute } from '../router.js';
import { AuditPage } from './audit.js';
import { CaPage } from './ca.js';
import { DevicePage } from './device.js';
import { DevicesPage } from './devices.js';
import { EnrollmentsPage } from './enrollments.js';
import { NamePage } from './name.js';
import { NamesPage } from './names.js';
import { Overview } from './overview.js';
import { RolloutsPage } from './rollouts.js';
import { WebhooksPage } from './webhooks.js';

export function Pages(props: { role: Role }) {
  const [section = '', id] = useRoute();
  const role = props.role;
  switch (section) {
    case 'devices':
      return id === undefined ? <DevicesPage /> : <DevicePage key={id} id={id} role={role} />;
    case 'names':
      return id === undefined ? <NamesPage /> : <NamePage key={id} name={id} role={role} />;
    case 'enrollments':
      return <EnrollmentsPage />;
    case 'ca':
      return <CaPage role={role} />;
    case 'webhooks':
      return <WebhooksPage role={role} />;
    case 'audit':
      return <AuditPage role={role} />;
    case 'rollouts':
      return <RolloutsPage />;
    default:
      return <Overview />;
  }
}
