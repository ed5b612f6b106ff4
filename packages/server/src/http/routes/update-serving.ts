import type { FastifyReply, FastifyRequest } from 'fastify';
import { FleetkeyError } from '@fleetkey/protocol';
import type { RepoReader } from '../../modules/updates/repo-reader.js';
import { parseRange } from '../../modules/updates/range.js';

/** Sends a metadata document as stored (canonical JSON bytes: what was signed and hashed). */
export function sendMetadata(reply: FastifyReply, body: string): FastifyReply {
  return reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(body);
}

/**
 * Streams a target with byte ranges (RFC 9110 §14): `Accept-Ranges: bytes`, a strong ETag (the
 * sha256), `Range` honoured for one range (206 + Content-Range), 416 with `Content-Range: bytes
 * *\/size` when unsatisfiable, and `If-Range` (§13.1.5) so a resume never splices two files.
 */
export async function sendTarget(req: FastifyRequest, reply: FastifyReply, reader: RepoReader, file: string): Promise<FastifyReply> {
  const { sha256, size } = await reader.target(file);
  const etag = `"${sha256}"`;
  reply.header('accept-ranges', 'bytes').header('etag', etag).header('content-type', 'application/octet-stream').header('cache-control', 'public, max-age=31536000, immutable');
  const ifRange = req.headers['if-range'];
  const rangeHeader = ifRange === undefined || ifRange === etag ? req.headers.range : undefined;
  const range = parseRange(rangeHeader, size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    throw new FleetkeyError('REPO_RANGE_NOT_SATISFIABLE', { detail: `${String(rangeHeader)} of ${size}` });
  }
  if (size === 0) return reply.header('content-length', 0).send('');
  if (range === null) return reply.header('content-length', size).send(reader.artifactStream(sha256, 0, size - 1));
  return reply
    .status(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(reader.artifactStream(sha256, range.start, range.end));
}
