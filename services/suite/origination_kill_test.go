package suite

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/proctest"
	"github.com/ringback/ringback/services/origination"
)

// A second origination replica (a child process, as a second pod behind the
// same Service) drives an agent's session in its room and a bridged call,
// and is killed with SIGKILL: no drain, no goodbye. The far end of the call
// hangs up while nobody drives it. Once the dead replica's heartbeat has
// expired (RINGBACK_HEARTBEAT_TTL, 3 s here) the suite's replica adopts both: the call ends COMPLETED,
// with its events and its CDR, the far end's leg with the cause it hung up
// with (the suite's replica heard it), and the session goes on, ending when
// the agent hangs up.
func TestOriginationReplicaSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills an origination binary")
	}
	bin := proctest.Build(t, "github.com/ringback/ringback/services/cmd/origination")
	e := start(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	child := proctest.Start(t, bin,
		"DATABASE_URL="+e.db, "NATS_URL="+e.info.NATSURL, "FREESWITCH_ESL_ADDR="+e.info.ESLAddr,
		"RINGBACK_RATING_ADDR="+e.info.RatingAt, "RINGBACK_CDR_ADDR="+e.info.CDRAt,
		"RINGBACK_INSTANCE="+fmt.Sprintf("origination-kill-%d", time.Now().UnixNano()),
		"RINGBACK_GRPC_ADDR="+addr, "RINGBACK_ADMIN_ADDR=127.0.0.1:0", "RINGBACK_LOG_LEVEL=warn",
		"RINGBACK_HEARTBEAT_TTL=3s")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		child.Alive(t)
		if time.Now().After(deadline) {
			t.Fatalf("the child replica is not serving after 60 s: %v", err)
		}
	}
	actx := metadata.AppendToOutgoingContext(ctx, origination.AccountHeader, e.info.DevAccountID)

	// On the child: an agent's phone in its room, and a bridged call
	// (numbers ending 0000 stay up until hung up).
	ep, err := originationv1.NewEndpointServiceClient(conn).CreateEndpoint(actx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
		Name: "agent 1017", Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1017"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := originationv1.NewCallServiceClient(conn)
	session, err := calls.CreateCall(actx, &originationv1.CreateCallRequest{
		First:      &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: ep.GetEndpoint().GetId()}},
		Conference: "agent-kill-1017"})
	if err != nil {
		t.Fatal(err)
	}
	bridged, err := calls.CreateCall(actx, &originationv1.CreateCallRequest{
		First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551470000"}},
		Second: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15558470000"}},
		Mode:   originationv1.CallMode_CALL_MODE_SIMULTANEOUS})
	if err != nil {
		t.Fatal(err)
	}
	sessionID, callID := session.GetCall().GetId(), bridged.GetCall().GetId()
	e.waitStatus(t, sessionID, "CALL_STATUS_BRIDGED")
	e.waitStatus(t, callID, "CALL_STATUS_BRIDGED")

	child.Kill()
	killed := time.Now()
	e.simControl(t, "/channels/"+bridged.GetCall().GetSecond().GetUuid()+"/hangup", `{"cause":"NORMAL_UNSPECIFIED"}`)
	// Without adoption the call would stay BRIDGED for good; the child's
	// heartbeat expires 3 s after its last one (sent every second).
	for deadline := killed.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, out := e.do(t, "GET", "/v1/calls/"+callID, e.key, "")
		if s := dig(out, "call", "status"); s == "CALL_STATUS_COMPLETED" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the dead replica's call: %s %v, 30 s after the kill", s, out)
		}
	}
	t.Logf("the dead replica's call ended %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	if got := strings.Join(e.eventTypes(t, callID), " "); !strings.HasSuffix(got, "LEG_HANGUP LEG_HANGUP CALL_COMPLETED") {
		t.Fatalf("the call's events: %s", got)
	}
	if cdr := e.waitCdr(t, e.key, callID); dig(cdr, "call", "status") != "CALL_STATUS_COMPLETED" || dig(cdr, "call", "second", "hangupCause") != "NORMAL_UNSPECIFIED" {
		t.Fatalf("the call's CDR: %v", cdr)
	}
	// The session was adopted too: still in its room, and the agent's
	// hangup is heard.
	_, out := e.do(t, "GET", "/v1/calls/"+sessionID, e.key, "")
	if s := dig(out, "call", "status"); s != "CALL_STATUS_BRIDGED" {
		t.Fatalf("the session after the adoption: %s", s)
	}
	e.simControl(t, "/channels/"+session.GetCall().GetFirst().GetUuid()+"/hangup", `{"cause":"NORMAL_CLEARING"}`)
	e.waitStatus(t, sessionID, "CALL_STATUS_COMPLETED")
}
