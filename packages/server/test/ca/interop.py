"""Reads what Fleetkey issued with pyca/cryptography (Debian's python3-cryptography), the way a
Python relying party would: loads every certificate, verifies each signature with its issuer's
public key, loads and verifies CRLs and OCSP responses. Same manifest as interop-go/main.go; one
line per check ("ok <name>: <detail>" or "FAIL <name>: <error>"); exit status 1 when any failed.

Run with /usr/bin/python3 (the Debian interpreter that has the package): interop.py manifest.json
"""
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

failed = False


def report(name, fn):
    global failed
    try:
        print(f"ok {name}: {fn()}")
    except Exception as e:  # every failure is a finding to report, not a crash
        failed = True
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def main():
    path = sys.argv[1]
    base = os.path.dirname(path)
    with open(path) as f:
        m = json.load(f)

    def read(name):
        with open(os.path.join(base, name), "rb") as f:
            return f.read()

    def cert(name):
        data = read(name)
        return x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)

    def verify_signed_by(child, issuer):
        # ECDSA only: our CAs are P-256/P-384 (RFC 5758 §3.2).
        issuer.public_key().verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(child.signature_hash_algorithm))
        if child.issuer != issuer.subject:
            raise ValueError("issuer name differs from the issuer's subject")

    roots = [cert(f) for f in m["roots"]]
    inters = [cert(f) for f in m["intermediates"]]
    by_subject = {c.subject.rfc4514_string(): c for c in roots + inters}

    def chain(c):
        hops = []
        while True:
            issuer = by_subject[c.issuer.rfc4514_string()]
            verify_signed_by(c, issuer)
            hops.append(issuer.subject.rfc4514_string())
            if issuer in roots:
                if issuer.issuer == issuer.subject:
                    verify_signed_by(issuer, issuer)
                return hops
            c = issuer

    for f in m["intermediates"]:
        report(f"verify {f}", lambda f=f: f"{len(chain(cert(f)))} hop(s)")

    def leaf(entry):
        c = cert(entry["file"])
        detail = f"{len(chain(c))} hop(s), notAfter {c.not_valid_after:%Y%m%d%H%M%SZ}"
        if entry["usage"] == "client":
            oids = [x509.ObjectIdentifier(o) for o in m["provenanceOids"]]
            found = [e for e in c.extensions if e.oid in oids]
            if not found:
                raise ValueError("no provenance extension")
            raw = found[0].value.value  # UnrecognizedExtension: the DER UTF8String
            detail += f", method {raw[2:].decode('utf-8')}"
        return detail

    for entry in m["leaves"]:
        report(f"verify {entry['name']}", lambda e=entry: leaf(e))

    def crl(entry):
        c = x509.load_der_x509_crl(read(entry["file"]))
        issuer = cert(entry["issuer"])
        if not c.is_signature_valid(issuer.public_key()):
            raise ValueError("CRL signature does not verify with the issuer's key")
        for s in entry["revoked"]:
            if c.get_revoked_certificate_by_serial_number(int(s, 16)) is None:
                raise ValueError(f"serial {s} is not on the CRL")
        return f"{len(c)} entries, nextUpdate {c.next_update:%Y%m%d%H%M%SZ}"

    for entry in m["crls"]:
        report(f"crl {entry['name']}", lambda e=entry: crl(e))

    def ocsp_check(entry):
        r = ocsp.load_der_ocsp_response(read(entry["response"]))
        if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise ValueError(f"response status {r.response_status}")
        issuer, c = cert(entry["issuer"]), cert(entry["cert"])
        issuer.public_key().verify(r.signature, r.tbs_response_bytes, ec.ECDSA(r.signature_hash_algorithm))
        if r.serial_number != c.serial_number:
            raise ValueError("response is about another serial")
        status = r.certificate_status.name.lower()
        if status != entry["expect"]:
            raise ValueError(f"status {status}, expected {entry['expect']}")
        return f"status {status}, {len(r.certificates)} embedded certificate(s)"

    for entry in m["ocsp"]:
        report(f"ocsp {entry['name']}", lambda e=entry: ocsp_check(e))

    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
