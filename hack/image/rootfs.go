package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// The root filesystem the manager needs, assembled here because no base
// image can be pulled on the build machines: what distroless/static:nonroot
// gives a static Go binary, less what it does not use (tzdata, the
// os-release and the dpkg status files).
//
//   - /etc/passwd and /etc/group with root, nobody and nonroot (65532), so
//     that tools and libraries that look the user up find it;
//   - /etc/nsswitch.conf, so that Go's resolver consults /etc/hosts first;
//   - the CA roots at /etc/ssl/certs/ca-certificates.crt, the path Go's
//     crypto/x509 reads first on Linux (and SSL_CERT_FILE names): by default
//     the build machine's bundle from Debian's ca-certificates package, with
//     its copyright file;
//   - /home/nonroot (owned by 65532) and /tmp (1777);
//   - no shell and no other binary.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
	nsswitch = "hosts: files dns\n"

	// caCopyright is the license of Debian's ca-certificates, shipped with
	// its bundle when present on the build machine.
	caCopyright = "/usr/share/doc/ca-certificates/copyright"
)

// rootfs returns the base layer's entries with the CA bundle read from
// caCerts, which must hold at least one certificate and nothing but PEM
// certificates.
func rootfs(caCerts string) ([]entry, error) {
	bundle, err := os.ReadFile(caCerts)
	if err != nil {
		return nil, fmt.Errorf("the CA roots (--ca-certs): %w", err)
	}
	n, err := countCerts(bundle)
	if err != nil {
		return nil, fmt.Errorf("the CA roots %s: %w", caCerts, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("the CA roots %s hold no certificate", caCerts)
	}
	es := []entry{
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
		{path: caBundleDst, mode: 0o644, data: bundle},
		{path: "home/nonroot", mode: 0o700, uid: nonrootUID, gid: nonrootUID, dir: true},
		{path: "tmp", mode: 0o1777, dir: true},
	}
	if b, err := os.ReadFile(caCopyright); err == nil {
		es = append(es, entry{path: caCopyright[1:], mode: 0o644, data: b})
	}
	return es, nil
}

// countCerts counts the PEM certificates of a bundle and fails on anything
// else in it (a private key or a broken block would be a build mistake).
func countCerts(b []byte) (int, error) {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			if len(bytes.TrimSpace(b)) != 0 && bytes.Contains(b, []byte("-----BEGIN")) {
				return n, fmt.Errorf("a PEM block after certificate %d does not parse", n)
			}
			return n, nil
		}
		if block.Type != "CERTIFICATE" {
			return n, fmt.Errorf("block %d is a %s, not a CERTIFICATE", n+1, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return n, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
}
