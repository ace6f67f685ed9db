// Command dialer runs Ringback's outbound dialer: campaigns over recipient
// lists, dialed through origination within each campaign's concurrency cap,
// attempts, retry intervals, the recipients' calling hours, schedules and
// do-not-call lists, the outcomes read back from the call events.
// Configuration: environment variables (see dialer.LoadConfig and
// config.LoadPlatform).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dialer:", err)
		os.Exit(1)
	}
	if err := dialer.Run(ctx, os.LookupEnv, logging.New(os.Stderr, lvl, "dialer"), dialer.RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "dialer:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
