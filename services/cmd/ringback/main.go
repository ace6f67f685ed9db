// Command ringback runs the whole Ringback suite in one process for
// development (`make run`): the FreeSWITCH simulator, an in-process NATS
// server, rating, cdr, webhook, origination and the gateway (http://127.0.0.1:8080), with a
// development account named "dev" whose API key it prints
// (RINGBACK_DEV_API_KEY chooses the key).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/suite"
)

func main() {
	ctx, stop := server.NotifyContext(context.Background())
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ringback:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	lvl, err := logging.ParseLevel(envOr("RINGBACK_LOG_LEVEL", config.DefaultLogLevel))
	if err != nil {
		return err
	}
	scale := 1.0
	if v := os.Getenv("FSSIM_TIME_SCALE"); v != "" {
		if scale, err = strconv.ParseFloat(v, 64); err != nil || scale <= 0 {
			return fmt.Errorf("FSSIM_TIME_SCALE %q: want a positive number", v)
		}
	}
	return suite.Run(ctx, suite.Options{
		SimESLAddr: envOr("FSSIM_ESL_ADDR", "127.0.0.1:8021"), SimControlAddr: envOr("FSSIM_CONTROL_ADDR", "127.0.0.1:8022"),
		SimTimeScale: scale,
		DevAccount:   "dev", DevKey: os.Getenv("RINGBACK_DEV_API_KEY"),
		Log: logging.New(os.Stderr, lvl, "ringback"),
		Ready: func(i suite.Info) {
			fmt.Printf("\nRingback is up: %s (OpenAPI: %s/v1/openapi.json)\n", i.HTTPURL, i.HTTPURL)
			fmt.Printf("  development account %q, API key: %s\n", "dev", i.DevKey)
			fmt.Printf("  rated with the development tariff %s (docs/examples/tariff.csv; no rate for +88)\n", i.DevTariffID)
			if i.SimControlURL != "" {
				fmt.Printf("  FreeSWITCH simulator: event socket %s, control API %s\n", i.ESLAddr, i.SimControlURL)
			}
			fmt.Printf("  records of ended calls: curl -s -H 'Authorization: Bearer %s' %s/v1/cdrs\n", i.DevKey, i.HTTPURL)
			fmt.Printf("  webhooks (loopback allowed, emails to the log): curl -s -H 'Authorization: Bearer %s' -d '{\"url\":\"http://127.0.0.1:9999/hook\",\"format\":\"WEBHOOK_FORMAT_CARRIER\"}' %s/v1/webhooks\n", i.DevKey, i.HTTPURL)
			fmt.Printf("  click-to-call banner: %s/demo/banner (campaign %s, public key %s)\n", i.HTTPURL, i.DevCampaignID, i.DevCampaignKey)
			fmt.Printf("  outbound dialer: curl -s -H 'Authorization: Bearer %s' -d '{\"name\":\"first\",\"default_country\":\"BR\"}' %s/v1/dialer/campaigns\n", i.DevKey, i.HTTPURL)
			fmt.Printf("  try: curl -s -H 'Authorization: Bearer %s' -d '{\"first\":{\"number\":\"+15551230001\"},\"second\":{\"number\":\"+15551230002\"}}' %s/v1/calls\n\n", i.DevKey, i.HTTPURL)
		},
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
