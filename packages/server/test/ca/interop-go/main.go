// Command interop-go reads what Fleetkey issued with Go's standard library and x/crypto/ocsp, the
// way a Go relying party (a partner's broker, a Kubernetes controller) would. It reads a manifest
// (JSON, see interop.test.ts), prints one line per check ("ok <name>: <detail>" or
// "FAIL <name>: <error>") and exits 1 when any check failed.
//
// Built offline with Debian's golang-go and golang-golang-x-crypto-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o interop-go .
package main

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ocsp"
)

type leaf struct {
	Name string `json:"name"`
	File string `json:"file"`
	// "client" or "server": the extended key usage the verifier asks for.
	Usage string `json:"usage"`
}

type crl struct {
	Name    string   `json:"name"`
	File    string   `json:"file"`
	Issuer  string   `json:"issuer"`
	Revoked []string `json:"revoked"`
}

type ocspCase struct {
	Name     string `json:"name"`
	Response string `json:"response"`
	Cert     string `json:"cert"`
	Issuer   string `json:"issuer"`
	Expect   string `json:"expect"`
}

type manifest struct {
	Roots         []string   `json:"roots"`
	Intermediates []string   `json:"intermediates"`
	Leaves        []leaf     `json:"leaves"`
	Crls          []crl      `json:"crls"`
	Ocsp          []ocspCase `json:"ocsp"`
	// Dotted OIDs of the provenance extension; a device certificate must carry one of them.
	ProvenanceOids []string `json:"provenanceOids"`
}

var failed bool

func report(name string, err error, detail string) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok %s: %s\n", name, detail)
}

func readCert(dir, file string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil {
		raw = b.Bytes
	}
	return x509.ParseCertificate(raw)
}

func provenance(c *x509.Certificate, oids []string) string {
	for _, e := range c.Extensions {
		for _, o := range oids {
			if e.Id.String() == o {
				var method string
				if _, err := asn1.UnmarshalWithParams(e.Value, &method, "utf8"); err == nil {
					return method
				}
			}
		}
	}
	return ""
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: interop-go <manifest.json>")
		os.Exit(2)
	}
	dir := filepath.Dir(os.Args[1])
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	for _, f := range m.Roots {
		c, err := readCert(dir, f)
		report("parse "+f, err, "root")
		if err == nil {
			roots.AddCert(c)
		}
	}
	for _, f := range m.Intermediates {
		c, err := readCert(dir, f)
		if err == nil {
			_, err = c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		}
		report("verify "+f, err, "chains to the root")
		if err == nil {
			inters.AddCert(c)
		}
	}

	for _, l := range m.Leaves {
		c, err := readCert(dir, l.File)
		if err != nil {
			report("parse "+l.Name, err, "")
			continue
		}
		usage := x509.ExtKeyUsageClientAuth
		if l.Usage == "server" {
			usage = x509.ExtKeyUsageServerAuth
		}
		chains, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{usage}})
		detail := ""
		if err == nil {
			detail = fmt.Sprintf("chain of %d, notAfter %s", len(chains[0]), c.NotAfter.UTC().Format("20060102150405Z"))
			if l.Usage == "client" {
				method := provenance(c, m.ProvenanceOids)
				if method == "" {
					err = fmt.Errorf("no provenance extension (%s)", strings.Join(m.ProvenanceOids, ", "))
				}
				detail += ", method " + method
			}
		}
		report("verify "+l.Name, err, detail)
	}

	for _, r := range m.Crls {
		der, err := os.ReadFile(filepath.Join(dir, r.File))
		var list *x509.RevocationList
		if err == nil {
			list, err = x509.ParseRevocationList(der)
		}
		var issuer *x509.Certificate
		if err == nil {
			issuer, err = readCert(dir, r.Issuer)
		}
		if err == nil {
			err = list.CheckSignatureFrom(issuer)
		}
		detail := ""
		if err == nil {
			seen := map[string]bool{}
			for _, e := range list.RevokedCertificates {
				seen[hex.EncodeToString(e.SerialNumber.Bytes())] = true
			}
			for _, s := range r.Revoked {
				if !seen[strings.TrimLeft(strings.ToLower(s), "0")] && !seen[strings.ToLower(s)] {
					err = fmt.Errorf("serial %s is not on the CRL", s)
				}
			}
			detail = fmt.Sprintf("%d entries, number %s, nextUpdate %s", len(list.RevokedCertificates), numberOf(list.Number), list.NextUpdate.UTC().Format("20060102150405Z"))
		}
		report("crl "+r.Name, err, detail)
	}

	for _, o := range m.Ocsp {
		der, err := os.ReadFile(filepath.Join(dir, o.Response))
		var cert, issuer *x509.Certificate
		if err == nil {
			cert, err = readCert(dir, o.Cert)
		}
		if err == nil {
			issuer, err = readCert(dir, o.Issuer)
		}
		var resp *ocsp.Response
		if err == nil {
			resp, err = ocsp.ParseResponseForCert(der, cert, issuer)
		}
		detail := ""
		if err == nil {
			status := map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[resp.Status]
			if status != o.Expect {
				err = fmt.Errorf("status %s, expected %s", status, o.Expect)
			}
			detail = "status " + status
		}
		report("ocsp "+o.Name, err, detail)
	}

	if failed {
		os.Exit(1)
	}
}

func numberOf(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return n.String()
}
