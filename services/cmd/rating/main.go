// Command rating runs Ringback's rating service: tariffs and rates,
// authorization of every leg before it is dialed, prepaid balances with
// reservations, settlement of answered legs from their hangup events, and
// the Direction of numbers. Configuration: environment variables (see
// rating.LoadConfig and config.LoadPlatform).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/rating"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rating:", err)
		os.Exit(1)
	}
	if err := rating.Run(ctx, os.LookupEnv, logging.New(os.Stderr, lvl, "rating"), rating.RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "rating:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
