package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// certificate serves Herald's TLS certificate and key, and reloads them without a restart: on
// SIGHUP, and when either file changes (checked every certCheckInterval), as an ACME client
// renewing them expects. A reload that fails keeps the certificate in use, and says why.
type certificate struct {
	certPath, keyPath string
	log               *zerolog.Logger
	current           atomic.Pointer[tls.Certificate]
	// Owned by load's caller (start, then the watch loop or a SIGHUP, never at once: see reload).
	reloading atomic.Bool
	stamp     string // the files' sizes and modification times when last loaded
}

const certCheckInterval = 30 * time.Second

func loadCertificate(certPath, keyPath string, log *zerolog.Logger) (*certificate, error) {
	c := &certificate{certPath: certPath, keyPath: keyPath, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the pair; the current certificate changes only if it parses.
func (c *certificate) load() error {
	stamp, err := c.fileStamp()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("tls_cert (HERALD_TLS_CERT) %s and tls_key (HERALD_TLS_KEY) %s: %w", c.certPath, c.keyPath, err)
	}
	c.current.Store(&pair)
	c.stamp = stamp
	return nil
}

func (c *certificate) fileStamp() (string, error) {
	stamp := ""
	for _, p := range []string{c.certPath, c.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// reload loads the files again, if changed or if forced (SIGHUP), and logs the outcome.
func (c *certificate) reload(force bool) {
	if !c.reloading.CompareAndSwap(false, true) {
		return
	}
	defer c.reloading.Store(false)
	if !force {
		if stamp, err := c.fileStamp(); err != nil || stamp == c.stamp {
			return
		}
	}
	if err := c.load(); err != nil {
		c.log.Error().Err(err).Msg("TLS certificate not reloaded; the previous one stays in use")
		return
	}
	c.log.Info().Str("cert", c.certPath).Msg("TLS certificate reloaded")
}

// watch reloads the certificate when its files change, until ctx ends.
func (c *certificate) watch(ctx context.Context) {
	t := time.NewTicker(certCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.reload(false)
		}
	}
}

// config is the listener's TLS configuration: TLS 1.2 or newer, HTTP/1.1 only (a WebSocket
// upgrade needs it), and the certificate of the moment.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}

// listen wraps ln in TLS.
func (c *certificate) listen(ln net.Listener) net.Listener { return tls.NewListener(ln, c.config()) }

var errTLSHalf = errors.New("tls_cert (HERALD_TLS_CERT) and tls_key (HERALD_TLS_KEY) go together: set both or neither")
