// Command cdr runs Ringback's call detail record service: it builds one
// record per ended call from the call events (a durable JetStream consumer
// writing to PostgreSQL) and serves queries, CSV exports, comments and
// statistics over gRPC. Configuration: environment variables (see
// cdr.LoadConfig and config.LoadPlatform).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ringback/ringback/services/cdr"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdr:", err)
		os.Exit(1)
	}
	if err := cdr.Run(ctx, os.LookupEnv, logging.New(os.Stderr, lvl, "cdr"), cdr.RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "cdr:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
