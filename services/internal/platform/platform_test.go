package platform

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func cfg(t *testing.T) config.Platform {
	return config.Platform{DatabaseURL: storetest.NewDatabase(t), RedisURL: cachetest.URL(), NATSURL: natstest.Start(t).URL(),
		AdminAddr: "127.0.0.1:0", GRPCAddr: "localhost:0", ShutdownTimeout: time.Second}
}

// Open connects to what a service needs, checks each in /readyz, and
// Close releases everything (the ports can be bound again).
func TestOpenAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Open(ctx, "test", cfg(t), Needs{Postgres: true, Redis: true, NATS: true}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DB.Ping(ctx); err != nil {
		t.Errorf("postgres: %v", err)
	}
	if err := p.Cache.Ping(ctx); err != nil {
		t.Errorf("redis: %v", err)
	}
	if err := p.Bus.Ready(ctx); err != nil {
		t.Errorf("nats: %v", err)
	}
	if p.Registry == nil || p.Server == nil {
		t.Fatal("no registry or server")
	}
	admin := p.Server.AdminAddr().String()
	p.Close()
	p.Close() // twice is harmless
	l, err := net.Listen("tcp", admin)
	if err != nil {
		t.Fatalf("admin port still held after Close: %v", err)
	}
	l.Close()
}

// Only what is needed is opened.
func TestOpenOnlyNeeds(t *testing.T) {
	c := config.Platform{DatabaseURL: "postgres://nobody@127.0.0.1:1/none", AdminAddr: "127.0.0.1:0", GRPCAddr: "localhost:0"}
	p, err := Open(context.Background(), "test", c, Needs{}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.DB != nil || p.Cache != nil || p.Bus != nil {
		t.Fatal("opened what was not needed")
	}
}

// A backing service that cannot be reached fails Open and leaves nothing
// open.
func TestOpenFailureClosesEverything(t *testing.T) {
	c := cfg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c.NATSURL = "nats://127.0.0.1:1"
	if _, err := Open(ctx, "test", c, Needs{Postgres: true, Redis: true, NATS: true}, quiet, nil); err == nil {
		t.Fatal("Open succeeded without NATS")
	}
}
