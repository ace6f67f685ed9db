// Command origination runs Ringback's origination service: the only
// component that talks to FreeSWITCH. It places and controls two-leg
// calls, serves CallService and EndpointService over gRPC, and publishes
// every call event on JetStream. Configuration: environment variables (see
// origination.LoadConfig and config.LoadPlatform).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/origination"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "origination:", err)
		os.Exit(1)
	}
	if err := origination.Run(ctx, os.LookupEnv, logging.New(os.Stderr, lvl, "origination"), origination.RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "origination:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
