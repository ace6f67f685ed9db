package esl_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ringback/ringback/services/internal/esl"
)

// How the origination service wires the client: handlers that feed its own
// queue and reconcile on NodeUp, then an originate per leg.
func ExampleDial() {
	ctx := context.Background()
	c, err := esl.Dial(ctx, esl.Config{
		Addrs:             []string{"127.0.0.1:8021"},
		Password:          "ClueCon",
		SessionsPerSecond: 30,
		Events:            []string{"CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"},
		Logger:            slog.Default(),
	}, esl.Handlers{
		Event: func(e esl.Event) {
			// e.UniqueID() is the origination_uuid of one of our legs.
			fmt.Println(e.Node, e.Name, e.UniqueID())
		},
		Up: func(u esl.NodeUp) {
			// Legs we think live on u.Node but absent from u.Channels
			// ended while we were not listening (all of them if
			// u.Restarted): mark them lost.
		},
	})
	if err != nil {
		fmt.Println("no FreeSWITCH:", err)
		return
	}
	defer c.Close()

	octx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	leg, err := c.Originate(octx, "", esl.OriginateRequest{
		UUID:           esl.NewUUID(), // stored with the call before dialing
		Dialstring:     "sofia/gateway/carrier/15551230000",
		CallerIDNumber: "15550001111",
		Timeout:        30 * time.Second,
		Vars:           map[string]string{"ringback_call_id": "c-42"},
	})
	var refused *esl.CommandError
	switch {
	case errors.As(err, &refused):
		fmt.Println("leg failed:", refused.Cause()) // USER_BUSY, NO_ANSWER, ...
	case err != nil:
		fmt.Println("leg outcome unknown or not sent:", err)
	default:
		fmt.Println("answered and parked:", leg.UUID, "on", leg.Node)
	}
}
