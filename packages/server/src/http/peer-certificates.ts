import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';

/*
 * The client certificates of a device-plane connection. Never `getPeerX509Certificate()` here: on
 * a server socket Node (v20 up to at least v26, nodejs/node#65579) takes the leaf out of
 * OpenSSL's peer chain stack with sk_X509_delete, so a later `getPeerCertificate(true)` sees no
 * intermediates and a device whose IDevID comes from a manufacturer's issuing CA (root → issuing
 * CA → IDevID, the issuing CA sent in the handshake) looked untrusted. `getPeerCertificate`
 * only copies.
 */

/** The client's leaf certificate, or undefined without one. */
export function peerLeaf(socket: TLSSocket): X509Certificate | undefined {
  const peer = socket.getPeerCertificate(false) as PeerCertificate | null | undefined;
  return peer?.raw === undefined ? undefined : new X509Certificate(peer.raw);
}

/**
 * The certificates the client presented after its leaf, in issuer order (RFC 8446 §4.4.2: the
 * sender's chain, which the path validator treats as untrusted input). getPeerCertificate(true)
 * is costly: call it on demand only.
 */
export function peerIntermediates(socket: TLSSocket): X509Certificate[] {
  let peer: PeerCertificate | DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  while (peer !== undefined && peer.raw !== undefined && !seen.has(peer.fingerprint256)) {
    seen.add(peer.fingerprint256);
    out.push(new X509Certificate(peer.raw));
    peer = 'issuerCertificate' in peer ? peer.issuerCertificate : undefined;
  }
  return out.slice(1);
}
