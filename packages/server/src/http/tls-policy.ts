/**
 * TLS for every Fleetkey listener: 1.2 minimum, and on 1.2 only ECDHE suites with AEAD, so every
 * session has forward secrecy (1.3 suites are all (EC)DHE). Our server keys are ECDSA.
 */
export const TLS_POLICY = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;
