package failover

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/client-go/rest"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// testCA signs the proxies' server certificate (127.0.0.1).
type testCA struct {
	certPEM []byte
	server  tls.Certificate
}

func newTestCA() (*testCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "failover test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &testCA{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}, nil
}

// listenTLS listens on 127.0.0.1 with the test CA's server certificate,
// HTTP/1.1 only (one request at a time per connection, so each request
// belongs to the process that owns the connection).
func listenTLS(ca *testCA, onHello func(*tls.ClientHelloInfo)) (net.Listener, string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ca.server}, NextProtos: []string{"http/1.1"}}
	if onHello != nil {
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			onHello(h)
			return nil, nil
		}
	}
	return tls.NewListener(ln, cfg), "https://" + ln.Addr().String(), nil
}

// --- which process is on the other end of a connection ---

type connKey struct{}

// attributor tells which manager process each proxied connection belongs
// to. It looks when the connection's TLS ClientHello arrives (the process
// that just connected is certainly alive), and again on the first request
// if that found none.
type attributor struct {
	pool   *pool
	byConn sync.Map // the raw net.Conn -> pid
}

func (a *attributor) hello(h *tls.ClientHelloInfo) int {
	pid := peerPID(h.Conn, a.pool.livePIDs())
	a.byConn.Store(h.Conn, pid)
	return pid
}

func (a *attributor) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connInfo{conn: c, a: a})
}

// connInfo is a proxied connection; its pid is settled on its first request.
type connInfo struct {
	conn net.Conn
	a    *attributor
	once sync.Once
	pid  int
}

func (c *connInfo) owner() int {
	c.once.Do(func() {
		raw := c.conn
		if tc, ok := c.conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if v, ok := c.a.byConn.LoadAndDelete(raw); ok {
			c.pid = v.(int)
		}
		if c.pid == 0 {
			c.pid = peerPID(c.conn, c.a.pool.livePIDs())
		}
	})
	return c.pid
}

// peerPID finds which of the candidate processes owns the client end of c
// (a loopback connection): the socket's inode from /proc/net/tcp, then the
// process holding that socket.
func peerPID(c net.Conn, candidates []int) int {
	peer, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0
	}
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		if ip == nil {
			return ""
		}
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	want1, want2 := hexAddr(peer), hexAddr(local)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0
	}
	defer f.Close()
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == want1 && fields[2] == want2 {
			inode = fields[9]
			break
		}
	}
	if inode == "" || inode == "0" {
		return 0
	}
	target := "socket:[" + inode + "]"
	for _, pid := range candidates {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == target {
				return pid
			}
		}
	}
	return 0
}

// recordingWriter notes when the response's header was written to the
// client (after any hook ran).
type recordingWriter struct {
	http.ResponseWriter
	// ctx is the request's: done when the manager has gone (status 0).
	ctx      context.Context
	mu       *sync.Mutex
	at       *time.Time
	status   *int
	recorded bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if !w.recorded {
		w.recorded = true
		w.mu.Lock()
		*w.at, *w.status = time.Now(), code
		if w.ctx.Err() != nil {
			*w.status = 0
		}
		w.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if !w.recorded {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// --- the API server proxy ---

// apiWrite is one write a manager sent to the API server.
type apiWrite struct {
	pid    int
	method string
	path   string
	// kind: "lease"; "status" (a CertificateRequest's status); "request"
	// (the CertificateRequest itself: its annotations); "event"; "other".
	kind    string
	request string // namespace/name of the CertificateRequest written, or an event is about
	holder  string // the lease holder written, for lease writes
	// body is what a status or event write sent (JSON or protobuf): the
	// condition messages and event notes users read.
	body     string
	received time.Time
	// answered is when the response header went back to the manager, and
	// status what it got (0: nothing, it had gone); upstream is the API
	// server's answer (a write it carried out even if the manager never
	// learnt it).
	answered time.Time
	status   int
	upstream int
}

// apiHook freezes (or kills) a process at an exact point: when the API
// server has answered one of its writes that match, before the manager
// gets the answer.
type apiHook struct {
	pid   int
	match func(*apiWrite) bool
	fire  func()
	fired chan *apiWrite
	// withhold keeps the answer from the manager until it gives up on it
	// (closes the connection), as when its client's timeout ran out while
	// it was frozen.
	withhold bool
}

type apiProxy struct {
	url  string
	srv  *http.Server
	pool *pool
	rp   *httputil.ReverseProxy

	mu     sync.Mutex
	writes []*apiWrite
	hook   *apiHook
	// identities maps a lease holder identity to the pid that wrote it.
	identities map[string]int
}

type writeKey struct{}

var leasePath = "/apis/coordination.k8s.io/v1/namespaces/" + clusterResourceNamespace + "/leases"

func startAPIProxy(cfg *rest.Config, ca *testCA, p *pool) (*apiProxy, error) {
	target, err := url.Parse(restHost(cfg))
	if err != nil {
		return nil, err
	}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	at := &attributor{pool: p}
	ln, u, err := listenTLS(ca, func(h *tls.ClientHelloInfo) { at.hello(h) })
	if err != nil {
		return nil, err
	}
	px := &apiProxy{url: u, pool: p, identities: map[string]int{}}
	px.rp = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:      tr,
		FlushInterval:  -1,
		ModifyResponse: px.modifyResponse,
		ErrorLog:       quietLog(),
	}
	px.srv = &http.Server{Handler: px, ConnContext: at.connContext, ErrorLog: quietLog(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = px.srv.Serve(ln) }()
	return px, nil
}

func (px *apiProxy) close() { _ = px.srv.Close() }

var crPath = regexp.MustCompile(`^/apis/cert-manager\.io/v1/namespaces/([^/]+)/certificaterequests/([^/]+)(/status)?$`)

// eventPath is an event, events.k8s.io/v1 or core/v1 (created, or patched
// when it repeats); either recorder names it <object>.<hex nanoseconds>.
var eventPath = regexp.MustCompile(`^/(?:apis/events\.k8s\.io/v1|api/v1)/namespaces/([^/]+)/events(?:/([^/]+))?$`)

var eventNameRE = regexp.MustCompile(`([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\.[0-9a-f]{12,}`)

var identityRE = regexp.MustCompile(`[A-Za-z0-9.-]+_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func (px *apiProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if r.Method == http.MethodGet || r.Method == http.MethodHead || ci == nil {
		px.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &apiWrite{pid: ci.owner(), method: r.Method, path: r.URL.Path, kind: "other", received: time.Now()}
	switch m := crPath.FindStringSubmatch(r.URL.Path); {
	case strings.HasPrefix(r.URL.Path, leasePath):
		rec.kind = "lease"
		// JSON or protobuf: the identity is hostname_uuid in either.
		rec.holder = identityRE.FindString(string(body))
	case m != nil && m[3] == "/status":
		rec.kind, rec.request, rec.body = "status", m[1]+"/"+m[2], string(body)
	case m != nil:
		rec.kind, rec.request = "request", m[1]+"/"+m[2]
	default:
		if e := eventPath.FindStringSubmatch(r.URL.Path); e != nil {
			rec.kind, rec.body = "event", string(body)
			// JSON or protobuf: the event's name is in the path of a patch,
			// and in the body of a create.
			name := e[2]
			if name == "" {
				name = eventNameRE.FindString(string(body))
			}
			if i := strings.LastIndexByte(name, '.'); i > 0 {
				rec.request = e[1] + "/" + name[:i]
			}
		}
	}
	px.mu.Lock()
	px.writes = append(px.writes, rec)
	px.mu.Unlock()
	rw := &recordingWriter{ResponseWriter: w, ctx: r.Context(), mu: &px.mu, at: &rec.answered, status: &rec.status}
	px.rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), writeKey{}, rec)))
}

func (px *apiProxy) modifyResponse(resp *http.Response) error {
	rec, _ := resp.Request.Context().Value(writeKey{}).(*apiWrite)
	if rec == nil {
		return nil
	}
	ok := resp.StatusCode/100 == 2
	px.mu.Lock()
	rec.upstream = resp.StatusCode
	if ok && rec.kind == "lease" && rec.holder != "" {
		px.identities[rec.holder] = rec.pid
	}
	h := px.hook
	if h != nil && h.pid == rec.pid && ok && h.match(rec) {
		px.hook = nil
	} else {
		h = nil
	}
	px.mu.Unlock()
	if h != nil {
		// The API server has carried the write out; the manager gets the
		// answer only when it runs again.
		h.fire()
		h.fired <- rec
		if h.withhold {
			select {
			case <-resp.Request.Context().Done():
			case <-time.After(time.Minute):
			}
		}
	}
	return nil
}

// lastRenewal is when pid's last lease write the API server carried out
// before t was received.
func (px *apiProxy) lastRenewal(pid int, t time.Time) time.Time {
	px.mu.Lock()
	defer px.mu.Unlock()
	var last time.Time
	for _, w := range px.writes {
		if w.pid == pid && w.kind == "lease" && w.holder != "" && w.upstream/100 == 2 && w.received.Before(t) && w.received.After(last) {
			last = w.received
		}
	}
	return last
}

// leadingSince is when pid's first lease write the API server carried out
// was received: when it acquired the lease (a deposed leader exits, so it
// acquires only once). Zero if it never did.
func (px *apiProxy) leadingSince(pid int) time.Time {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, w := range px.writes {
		if w.pid == pid && w.kind == "lease" && w.holder != "" && w.upstream/100 == 2 {
			return w.received
		}
	}
	return time.Time{}
}

// arm installs a hook; only one at a time.
func (px *apiProxy) arm(h *apiHook) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.hook = h
}

func (px *apiProxy) disarm(h *apiHook) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.hook == h {
		px.hook = nil
		return true
	}
	return false
}

// snapshot copies the writes recorded so far.
func (px *apiProxy) snapshot() []apiWrite {
	px.mu.Lock()
	defer px.mu.Unlock()
	out := make([]apiWrite, len(px.writes))
	for i, w := range px.writes {
		out[i] = *w
	}
	return out
}

// leader is the process of the last lease write the API server carried
// out, and when it was sent; 0 when that write named no holder.
func (px *apiProxy) leader() (pid int, at time.Time) {
	px.mu.Lock()
	defer px.mu.Unlock()
	for i := len(px.writes) - 1; i >= 0; i-- {
		w := px.writes[i]
		if w.kind == "lease" && w.upstream/100 == 2 {
			if w.holder == "" {
				return 0, w.received
			}
			return w.pid, w.received
		}
	}
	return 0, time.Time{}
}

// --- the EJBCA proxy ---

// ejbcaCall is one EJBCA call a manager made.
type ejbcaCall struct {
	pid      int
	endpoint string // the simulator's endpoint names: pkcs10enroll, search-v2, ...
	path     string
	username string
	received time.Time
	// delivered is when the request was written to the simulator, simDone
	// when the simulator answered (it finishes a call even after the
	// manager gave up), status its answer (0: none).
	delivered, simDone time.Time
	status             int
	// answered is when the answer went back to the manager (zero: it had
	// gone).
	answered       time.Time
	answeredStatus int
}

// issuing reports the endpoints that issue or add.
func (c *ejbcaCall) issuing() bool {
	switch c.endpoint {
	case "pkcs10enroll", "certificaterequest", "endentity", "finalize":
		return true
	}
	return false
}

type ejbcaProxy struct {
	url  string
	sim  *ejbcasim.Sim
	srv  *http.Server
	pool *pool
	rp   *httputil.ReverseProxy

	at *attributor

	mu    sync.Mutex
	calls []*ejbcaCall
	hello *helloHook
	call  *callHook
	// conns are the open connections and their state.
	conns map[net.Conn]http.ConnState
}

// helloHook freezes a process when it opens a connection (its TLS
// ClientHello has arrived; the handshake completes only once it runs again),
// if ready says so: a call it started after its last lease check is then
// held before a byte of it was sent.
type helloHook struct {
	pid   int
	ready func() bool
	fire  func()
	fired chan struct{}
}

// armHello installs h and makes the managers open a new connection for
// every call (keep-alives off) until it fires or is disarmed. Connections
// that carry no request now are closed: idle ones, and new ones that never
// carried one (a client can dial one for a call that a freed connection
// then served, and keep it for the next call; the server closes those
// only once they are 5 s old), but not the new one of a frozen process (a
// long round's old leader, held in its handshake until it is resumed).
func (px *ejbcaProxy) armHello(h *helloHook) {
	px.mu.Lock()
	px.hello = h
	var spare []net.Conn
	for c, st := range px.conns {
		switch st {
		case http.StateIdle:
			spare = append(spare, c)
		case http.StateNew:
			raw := c
			if tc, ok := c.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			v, ok := px.at.byConn.Load(raw)
			if !ok {
				continue // no ClientHello yet
			}
			if pr := px.pool.byPID(v.(int)); pr != nil && !pr.isFrozen() {
				spare = append(spare, c)
			}
		}
	}
	px.mu.Unlock()
	px.srv.SetKeepAlivesEnabled(false)
	for _, c := range spare {
		_ = c.Close()
	}
}

// connState keeps conns up to date.
func (px *ejbcaProxy) connState(c net.Conn, st http.ConnState) {
	px.mu.Lock()
	defer px.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(px.conns, c)
		return
	}
	px.conns[c] = st
}

func (px *ejbcaProxy) disarmHello(h *helloHook) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.hello != h {
		return false
	}
	px.hello = nil
	px.srv.SetKeepAlivesEnabled(true)
	return true
}

func (px *ejbcaProxy) onHello(hello *tls.ClientHelloInfo) {
	pid := px.at.hello(hello)
	px.mu.Lock()
	h := px.hello
	px.mu.Unlock()
	if h == nil || pid != h.pid || !h.ready() {
		return
	}
	if !px.disarmHello(h) {
		return
	}
	h.fire()
	h.fired <- struct{}{}
}

// callHook freezes (or kills) a process when one of its calls that match
// has arrived, before the proxy passes it on: EJBCA then carries the call
// out while its caller cannot act on the answer.
type callHook struct {
	pid   int
	match func(*ejbcaCall, *http.Request) bool
	fire  func()
	fired chan struct{}
}

// armCall installs h; only one at a time. It fires once.
func (px *ejbcaProxy) armCall(h *callHook) {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.call = h
}

func (px *ejbcaProxy) disarmCall(h *callHook) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.call != h {
		return false
	}
	px.call = nil
	return true
}

type callKey struct{}

func startEJBCAProxy(sim *ejbcasim.Sim, ca *testCA, p *pool) (*ejbcaProxy, error) {
	target, err := url.Parse(sim.URL())
	if err != nil {
		return nil, err
	}
	tlsCfg, err := upstreamTLS(sim)
	if err != nil {
		return nil, err
	}
	px := &ejbcaProxy{sim: sim, pool: p, at: &attributor{pool: p}, conns: map[net.Conn]http.ConnState{}}
	ln, u, err := listenTLS(ca, px.onHello)
	if err != nil {
		return nil, err
	}
	px.url = u
	px.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			call, _ := pr.In.Context().Value(callKey{}).(*ejbcaCall)
			// The simulator's answer is awaited even when the manager gave up,
			// to learn when EJBCA finished the call.
			ctx := context.WithoutCancel(pr.In.Context())
			if call != nil {
				ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
					px.mu.Lock()
					call.delivered = time.Now()
					px.mu.Unlock()
				}})
			}
			pr.Out = pr.Out.WithContext(ctx)
		},
		Transport: &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
			ResponseHeaderTimeout: time.Minute},
		ModifyResponse: func(resp *http.Response) error {
			if call, _ := resp.Request.Context().Value(callKey{}).(*ejbcaCall); call != nil {
				px.mu.Lock()
				call.simDone, call.status = time.Now(), resp.StatusCode
				px.mu.Unlock()
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if call, _ := r.Context().Value(callKey{}).(*ejbcaCall); call != nil {
				px.mu.Lock()
				if call.simDone.IsZero() {
					call.simDone = time.Now()
				}
				px.mu.Unlock()
			}
			if hj, ok := w.(http.Hijacker); ok {
				// As the simulator did: no answer.
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: quietLog(),
	}
	px.srv = &http.Server{Handler: px, ConnContext: px.at.connContext, ConnState: px.connState, ErrorLog: quietLog(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = px.srv.Serve(ln) }()
	return px, nil
}

func (px *ejbcaProxy) close() { _ = px.srv.Close() }

func (px *ejbcaProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	call := &ejbcaCall{endpoint: endpointName(r.URL.Path), path: r.URL.Path, username: usernameIn(body), received: time.Now()}
	if ci != nil {
		call.pid = ci.owner()
	}
	px.mu.Lock()
	px.calls = append(px.calls, call)
	h := px.call
	if h != nil && h.pid == call.pid && h.match(call, r) {
		px.call = nil
	} else {
		h = nil
	}
	px.mu.Unlock()
	if h != nil {
		h.fire()
		h.fired <- struct{}{}
	}
	rw := &recordingWriter{ResponseWriter: w, ctx: r.Context(), mu: &px.mu, at: &call.answered, status: &call.answeredStatus}
	px.rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), callKey{}, call)))
}

func (px *ejbcaProxy) snapshot() []ejbcaCall {
	px.mu.Lock()
	defer px.mu.Unlock()
	out := make([]ejbcaCall, len(px.calls))
	for i, c := range px.calls {
		out[i] = *c
	}
	return out
}

// inFlight names a call for one of the requests that EJBCA has not
// finished, "" when there is none.
func (px *ejbcaProxy) inFlight(crs []*cmapi.CertificateRequest) string {
	users := map[string]bool{}
	for _, cr := range crs {
		users[username(cr)] = true
	}
	for _, c := range px.snapshot() {
		if users[c.username] && c.simDone.IsZero() {
			return fmt.Sprintf("%s for %s (%s) is still in EJBCA's hands", c.endpoint, c.username, pidString(c.pid))
		}
	}
	return ""
}

const restPrefix = "/ejbca/ejbca-rest-api"

func endpointName(path string) string {
	p := strings.TrimPrefix(path, restPrefix)
	switch {
	case p == "/v1/certificate/pkcs10enroll":
		return "pkcs10enroll"
	case p == "/v1/certificate/certificaterequest":
		return "certificaterequest"
	case p == "/v1/endentity":
		return "endentity"
	case strings.HasSuffix(p, "/finalize"):
		return "finalize"
	case p == "/v1/certificate/search":
		return "search"
	case p == "/v2/certificate/search":
		return "search-v2"
	case strings.HasSuffix(p, "/status"):
		return "status"
	case strings.HasSuffix(strings.TrimSuffix(p, "/"), "/revoke"):
		return "revoke"
	}
	return "other " + p
}

// usernameIn finds the end entity a call is about: an enrolment's
// "username", or a search's QUERY criterion.
func usernameIn(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var walk func(any) string
	walk = func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if u, ok := x["username"].(string); ok {
				return u
			}
			if p, _ := x["property"].(string); p == "QUERY" {
				if s, ok := x["value"].(string); ok {
					return s
				}
			}
			for _, e := range x {
				if s := walk(e); s != "" {
					return s
				}
			}
		case []any:
			for _, e := range x {
				if s := walk(e); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return walk(v)
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// pidString names a process for messages.
func pidString(pid int) string {
	if pid == 0 {
		return "an unknown process"
	}
	return "pid " + strconv.Itoa(pid)
}
