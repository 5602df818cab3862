package ejbca_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// misbehaving listens on 127.0.0.1 and hands each connection to serve.
func misbehaving(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	return "https://" + l.Addr().String()
}

// TLS failures name what went wrong and which side to fix, and count as
// never sent (nothing can have been issued).
func TestTLSFailuresSayWhichSideToFix(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{RefuseUntrustedClientCertsInHandshake: true})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "plain", http.StatusNotFound)
	}))
	t.Cleanup(plain.Close)
	// It reads the ClientHello first, so the close is a clean FIN (with
	// unread data it would be a reset, which gets the same hint).
	closing := misbehaving(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 4096)); c.Close() })
	talking := misbehaving(t, func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")); c.Close() })
	stop := make(chan struct{})
	silent := misbehaving(t, func(c net.Conn) { <-stop; c.Close() })
	t.Cleanup(func() { close(stop) })

	untrustedCert, untrustedKey, err := sim.NewUntrustedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts func(*ejbca.Options)
		want []string
	}{
		{"untrusted client CA", func(o *ejbca.Options) { o.ClientCertificate = certPair(t, untrustedCert, untrustedKey) },
			[]string{"tls: unknown certificate authority", "the server does not trust the CA that issued the issuer's client certificate", "fix it on the server's side"}},
		{"plain HTTP port", func(o *ejbca.Options) { o.URL = "https://" + strings.TrimPrefix(plain.URL, "http://") },
			[]string{"server gave HTTP response to HTTPS client", "plain HTTP", "HTTPS port"}},
		{"another protocol", func(o *ejbca.Options) { o.URL = talking },
			[]string{"first record does not look like a TLS handshake", "does not speak TLS", "HTTPS port"}},
		{"closes at once", func(o *ejbca.Options) { o.URL = closing },
			[]string{"EOF", "closed the connection during the TLS handshake"}},
		{"never answers the handshake", func(o *ejbca.Options) { o.URL, o.Timeout = silent, 3*time.Second },
			[]string{"TLS handshake timeout", "did not complete the TLS handshake"}},
		{"untrusted server", func(o *ejbca.Options) { o.Roots = nil },
			[]string{"certificate signed by unknown authority", "fix it on the issuer's side: caBundle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := options(t, sim, modeMTLS)
			tc.opts(&o)
			_, err := newClient(t, o).ListCAs(ctxFor(t))
			if err == nil {
				t.Fatal("ListCAs succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if !ejbca.IsRetryable(err) || ejbca.MayHaveIssued(err) {
				t.Errorf("retryable %v, may have issued %v: %v", ejbca.IsRetryable(err), ejbca.MayHaveIssued(err), err)
			}
		})
	}
}

// TestMayConnectGatesNewConnections: a process that no longer leads sends
// nothing on a new connection; the call fails as never sent.
func TestMayConnectGatesNewConnections(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	var leading atomic.Bool
	o := options(t, sim, modeMTLS)
	o.MayConnect = leading.Load
	c := newClient(t, o)
	csr, _ := simpleCSR(t, "gated.example.com")
	_, err := c.Enroll(ctxFor(t), enrolment(csr, "gated"))
	if err == nil || ejbca.MayHaveIssued(err) || !strings.Contains(err.Error(), "no longer holds the leader election lease") {
		t.Fatalf("Enroll while not leading = %v, want a call never sent", err)
	}
	if n := sim.Counters().Get("pkcs10enroll"); n != 0 {
		t.Fatalf("%d enrolments reached EJBCA from a process that does not lead", n)
	}
	leading.Store(true)
	if _, err := c.Enroll(ctxFor(t), enrolment(csr, "gated")); err != nil {
		t.Fatalf("Enroll while leading: %v", err)
	}
}
