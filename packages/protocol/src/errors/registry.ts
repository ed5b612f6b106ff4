import type { Catalogue } from './error-spec.js';

export const registryErrors = {
  DEVICE_NOT_FOUND: { status: 404, message: 'No such device.' },
  DEVICE_EXISTS: { status: 409, message: 'A device with this id exists or existed; device ids are never reused.' },
  DEVICE_NOT_BINDABLE: { status: 409, message: 'The device is revoked or retired and cannot be bound.' },
  DEVICE_ALREADY_BOUND: { status: 409, message: 'The device is already bound to a name.' },
  DEVICE_STATUS_TRANSITION: { status: 409, message: 'The device cannot move to that status from its current one.' },
  NAME_NOT_FOUND: { status: 404, message: 'No such name.' },
  NAME_MOVED: { status: 404, message: 'The name was renamed; see `movedTo`.' },
  NAME_EXISTS: { status: 409, message: 'A name with this value exists or is kept as an alias.' },
  NAME_ALREADY_BOUND: { status: 409, message: 'The name is already bound to a device; use replace.' },
  NAME_NOT_BOUND: { status: 409, message: 'The name is not bound to a device; use bind.' },
  BINDING_CONFLICT: { status: 409, message: 'The binding changed concurrently; read the name again and retry.' },
  SAME_DEVICE: { status: 409, message: 'The name is already bound to that device.' },
} as const satisfies Catalogue;
