// Package natstest runs a real nats-server with JetStream inside the test
// process, on a free loopback port with its store in t.TempDir(), so tests of
// anything that publishes or consumes events need no NATS installed and never
// share a server (nats.go's own tests do the same).
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an in-process nats-server, shut down at the test's cleanup.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
	url  string
}

// Start starts a JetStream-enabled server for t.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      -1, // a free port
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// Tests use small in-memory budgets; leave the machine's disk alone.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  256 << 20,
	}}
	s.start()
	// The port is fixed from now on, so that Restart comes back on it.
	_, port, _ := net.SplitHostPort(s.srv.Addr().String())
	s.opts.Port, _ = strconv.Atoi(port)
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts // the server keeps and mutates its Options
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.t.Fatal("natstest: server not ready after 10s")
	}
	s.srv = srv
	s.url = srv.ClientURL()
}

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string { return s.url }

// Shutdown stops the server (clients start reconnecting). It is safe to call
// more than once.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart stops the server if running and starts it again on the same port
// with the same store, as a NATS restart in production would.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}
