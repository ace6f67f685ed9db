// Command gateway runs Ringback's HTTP edge: the REST API under /v1 (API
// keys, IP allowlists), the carrier-compatible clickToDial endpoints and
// the OpenAPI document, in front of the services' gRPC APIs.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringback/ringback/services/gateway"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := gateway.Load(os.LookupEnv)
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, cfg.Platform.LogLevel, "gateway")
	return gateway.Run(ctx, cfg, log, prometheus.NewRegistry(), gateway.RunOptions{})
}
