// Package natstest runs a real nats-server with JetStream inside the test
// process, on a free loopback port with its store in t.TempDir(), so tests of
// anything that publishes or consumes events need no NATS installed and never
// share a server (nats.go's own tests do the same).
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
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
	if err := s.tryStart(); err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
}

func (s *Server) tryStart() error {
	opts := s.opts // the server keeps and mutates its Options
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return errors.New("server not ready after 10s")
	}
	s.srv = srv
	s.url = srv.ClientURL()
	return nil
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

// StartCluster starts n JetStream-enabled servers clustered over loopback
// routes (a NATS cluster as Kubernetes runs it, for replicated streams),
// and returns once they have elected a JetStream meta leader. Clients may
// connect to any one's URL.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	// A clustered JetStream server needs its routes configured before it
	// starts, so the route ports are picked ahead; one may be taken
	// meanwhile (by another socket's ephemeral port), and then the whole
	// cluster starts again on others.
	var err error
	for range 3 {
		var servers []*Server
		if servers, err = startCluster(t, n); err == nil {
			return servers
		}
	}
	t.Fatalf("natstest: cluster: %v", err)
	return nil
}

func startCluster(t testing.TB, n int) ([]*Server, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
	}
	servers := make([]*Server, 0, n)
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}
	for i := range n {
		s := &Server{t: t, opts: server.Options{
			ServerName: "n" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "ringback-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
			// As Start's.
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  256 << 20,
		}}
		if err := s.tryStart(); err != nil {
			stop()
			return nil, fmt.Errorf("server %d: %w", i, err)
		}
		servers = append(servers, s)
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range servers {
		for !hasLeader(s.srv, n) {
			if time.Now().After(deadline) {
				stop()
				return nil, errors.New("no JetStream meta leader after 20s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return servers, nil
}

// hasLeader reports whether s knows the JetStream meta leader of a
// cluster of n servers.
func hasLeader(s *server.Server, n int) bool {
	jsz, err := s.Jsz(nil)
	return err == nil && jsz.Meta != nil && jsz.Meta.Leader != "" && jsz.Meta.Size == n
}
