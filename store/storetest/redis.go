package storetest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartRedis starts a private redis-server on a free loopback port, without
// persistence, waits until it answers PING and kills it when tb ends. Without
// redis-server on PATH the test is skipped, except under CI (CI set), where
// a missing server is a broken pipeline and fails.
func StartRedis(tb testing.TB) (addr string) {
	tb.Helper()
	return StartRedisServer(tb).Addr
}

// RedisServer is a private redis-server that a test can stop and start
// again on the same address (an outage, and the server coming back).
type RedisServer struct {
	// Addr is host:port of the plain port, or of the TLS port with TLS.
	Addr string
	// CAFile is the PEM file of the CA that signed the server's certificate
	// (TLS only).
	CAFile string
	// certFile and keyFile are the server's certificate (for 127.0.0.1)
	// and key, which a sentinel of a TLS master serves too.
	certFile, keyFile string

	tb   testing.TB
	bin  string
	args []string // besides the port

	mu   sync.Mutex
	stop func() // nil while stopped
}

// URL is the server's address as a store URL: redis://host:port, or
// rediss://host:port with TLS.
func (s *RedisServer) URL() string {
	if s.CAFile != "" {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

func redisBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server not on PATH, and CI is set: install it (apt-get install redis-server) so the Redis store is tested")
		}
		tb.Skip("redis-server not on PATH: install it (apt-get install redis-server) to test the Redis store")
	}
	return bin
}

// StartRedisServer is StartRedis returning the server, which the test may
// Stop and Start.
func StartRedisServer(tb testing.TB) *RedisServer {
	tb.Helper()
	s := &RedisServer{tb: tb, bin: redisBinary(tb)}
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tb.TempDir()}
	s.startOnFreePort()
	return s
}

// StartRedisTLS starts a redis-server that accepts only TLS connections,
// with a certificate for 127.0.0.1 signed by a CA made for the test
// (CAFile). It skips if this redis-server was built without TLS (unless CI
// is set).
func StartRedisTLS(tb testing.TB) *RedisServer {
	tb.Helper()
	s := &RedisServer{tb: tb, bin: redisBinary(tb)}
	dir := tb.TempDir()
	ca, cert, key := writeTestCertificates(tb, dir)
	s.CAFile, s.certFile, s.keyFile = ca, cert, key
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--port", "0", "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "no"}
	s.startOnFreePort()
	return s
}

func (s *RedisServer) startOnFreePort() {
	s.tb.Helper()
	// A port found free can be taken before redis binds it; try a few.
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.tb.Fatal(err)
		}
		s.Addr = l.Addr().String()
		l.Close()
		if lastErr = s.start(); lastErr == nil {
			s.tb.Cleanup(s.Stop)
			return
		}
	}
	s.tb.Fatalf("starting redis-server: %v", lastErr)
}

// Start starts the server again on its address after Stop (its data is
// gone: it has no persistence). It fails the test if the server does not
// come up.
func (s *RedisServer) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("restarting redis-server on %s: %v", s.Addr, err)
	}
}

// Stop kills the server; connections to it fail until Start.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	args := append([]string{"--port", port}, s.args...)
	if s.CAFile != "" {
		args = append(append([]string{}, s.args...), "--tls-port", port)
	}
	stop, err := run(s.bin, args, func() error { return s.ping() })
	if err != nil {
		return err
	}
	s.stop = stop
	return nil
}

func (s *RedisServer) ping() error {
	if s.CAFile == "" {
		return pingRaw(s.Addr, nil)
	}
	return pingRaw(s.Addr, s.tlsConfig())
}

// tlsConfig trusts the test CA, for the server's loopback address.
func (s *RedisServer) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	if pemBytes, err := os.ReadFile(s.CAFile); err == nil {
		pool.AppendCertsFromPEM(pemBytes)
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
}

// run starts bin with args and waits until ready succeeds; it returns how
// to kill it.
func run(bin string, args []string, ready func() error) (stop func(), err error) {
	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &syncWriter{w: &logs}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ready() == nil {
			return stop, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited: %s", filepath.Base(bin), logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not answer PING within 10s: %s", filepath.Base(bin), logs.String())
		}
	}
}

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under the name name, and returns its address. It is
// killed when tb ends. The sentinel of a TLS master (StartRedisTLS) accepts
// only TLS itself, with the master's certificate, and talks TLS to the
// master.
func StartSentinel(tb testing.TB, master *RedisServer, name string) (addr string) {
	tb.Helper()
	bin := redisBinary(tb)
	dir := tb.TempDir()
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
		host, port, _ := net.SplitHostPort(addr)
		mhost, mport, _ := net.SplitHostPort(master.Addr)
		conf := filepath.Join(dir, "sentinel.conf")
		listen := "port " + port + "\n"
		var pingTLS *tls.Config
		if master.CAFile != "" {
			listen = fmt.Sprintf("port 0\ntls-port %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"+
				"tls-auth-clients no\ntls-replication yes\n", port, master.certFile, master.keyFile, master.CAFile)
			pingTLS = master.tlsConfig()
		}
		body := fmt.Sprintf("%sbind %s\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n",
			listen, host, dir, name, mhost, mport, name)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		stop, err := run(bin, []string{conf, "--sentinel"}, func() error { return pingRaw(addr, pingTLS) })
		if err == nil {
			tb.Cleanup(stop)
			return addr
		}
		lastErr = err
	}
	tb.Fatalf("starting redis sentinel: %v", lastErr)
	return ""
}

// pingRaw speaks just enough RESP to know the server is serving.
func pingRaw(addr string, tlsConf *tls.Config) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if tlsConf != nil {
		c = tls.Client(c, tlsConf)
	}
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// writeTestCertificates makes a CA and a server certificate for 127.0.0.1
// signed by it, and writes them to dir.
func writeTestCertificates(tb testing.TB, dir string) (caFile, certFile, keyFile string) {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wechat-oidc test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		tb.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "PRIVATE KEY", keyDER)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
