// Command webhook runs Ringback's webhook service: it delivers call events
// to the accounts' subscribed URLs (signed, in order per call, retried,
// logged; a durable JetStream consumer, deliveries in PostgreSQL) and sends
// the accounts' emails (disabled webhooks, click-to-call reminders).
// Configuration: environment variables (see webhook.LoadConfig and
// config.LoadPlatform).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/webhook"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
	if err := webhook.Run(ctx, os.LookupEnv, logging.New(os.Stderr, lvl, "webhook"), webhook.RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
