//go:build unix

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/clients"
)

// writeSelfSigned writes a certificate for 127.0.0.1 with the given serial and its key, and returns
// a pool that trusts it.
func writeSelfSigned(t *testing.T, certPath, keyPath string, serial int64) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "herald test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: a reload between the two writes must not pair the new certificate with the old key.
	for path, block := range map[string]*pem.Block{keyPath: {Type: "EC PRIVATE KEY", Bytes: keyDER}, certPath: {Type: "CERTIFICATE", Bytes: der}} {
		if err := os.WriteFile(path+".tmp", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestTLS: with --tls-cert and --tls-key Herald serves wss:// and https:// (TLS 1.2 or newer only),
// and after SIGHUP new connections get the certificate that replaced the files, with no restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeSelfSigned(t, certPath, keyPath, 1)
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--tls-cert", certPath, "--tls-key", keyPath}, nil)
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	c, err := clients.Dial(ctx, "wss://"+addr+"/app/app-key", &clients.DialOptions{HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SubscribeAndWait(ctx, "room", nil); err != nil {
		t.Fatal(err)
	}
	rest := clients.NewREST(clients.RESTConfig{BaseURL: "https://" + addr, AppID: defaultAppID, Key: defaultAppKey,
		Secret: defaultAppSecret, HTTPClient: httpClient})
	if _, err := rest.Trigger(ctx, []string{"room"}, "over-tls", "{}", nil); err != nil {
		t.Fatal(err)
	}
	expectEvent(ctx, t, c, "room", "over-tls")

	old, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		old.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	serial := func() int64 {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serving certificate %d, want 1", got)
	}
	writeSelfSigned(t, certPath, keyPath, 2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); serial() != 2; {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 10 s of SIGHUP")
		}
		time.Sleep(20 * time.Millisecond) // the reload runs on the signal's goroutine; polled with a deadline
	}
	if _, err := rest.Trigger(ctx, []string{"room"}, "after-reload", "{}", nil); err != nil { // an old connection goes on
		t.Fatal(err)
	}
	expectEvent(ctx, t, c, "room", "after-reload")
	sigterm(t)
	expectExit(ctx, t, exit)
}
