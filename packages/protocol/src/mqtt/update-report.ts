/**
 * The update report a device publishes on `devices/{deviceId}/update` (QoS 1): progress and outcome
 * of one update, per the issue-12 wire contract (docs/updates.md). The gateway validates every
 * report against this schema before it stores it; the SDK builds reports with the same type.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { isErrorCode, type ErrorCode } from '../errors/index.js';
import { SEMVER_PATTERN } from '../updates/semver.js';

export const UPDATE_PHASES = ['downloading', 'verifying', 'installing', 'installed', 'failed'] as const;
export type UpdatePhase = (typeof UPDATE_PHASES)[number];


export const UpdateReport = Type.Object(
  {
    releaseId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    version: Type.String({ minLength: 5, maxLength: 64, pattern: SEMVER_PATTERN }),
    phase: Type.Union(UPDATE_PHASES.map((p) => Type.Literal(p))),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Z][A-Z0-9_]{0,63}$' })),
    progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);
export type UpdateReport = Static<typeof UpdateReport> & { code?: ErrorCode };

const compiled = TypeCompiler.Compile(UpdateReport);

/**
 * Parses and validates one report payload. Returns the report, or the reason it is refused:
 * not JSON, not the schema, a code outside the catalogue, a `failed` report without a code or a
 * code on any other phase (a code always explains a failure, nothing else).
 */
export function parseUpdateReport(payload: Buffer | string): { ok: true; report: UpdateReport } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'update report is not JSON' };
  }
  if (!compiled.Check(value)) {
    const first = compiled.Errors(value).First();
    return { ok: false, reason: `update report: ${first === undefined ? 'invalid' : `${first.path || '/'} ${first.message}`}`.slice(0, 200) };
  }
  const r = value as Static<typeof UpdateReport>;
  if (r.code !== undefined && !isErrorCode(r.code)) return { ok: false, reason: 'update report: code is not in the catalogue' };
  if ((r.phase === 'failed') !== (r.code !== undefined)) return { ok: false, reason: 'update report: a code goes with phase failed, and only with it' };
  return { ok: true, report: r as UpdateReport };
}
