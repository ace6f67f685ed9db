package origination

import (
	"context"
	"fmt"
	"testing"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func endpointServer(t *testing.T) *EndpointServer {
	t.Helper()
	pool := storetest.NewDB(t)
	if err := store.Migrate(context.Background(), pool, "origination", Migrations()); err != nil {
		t.Fatal(err)
	}
	return &EndpointServer{Store: &EndpointStore{DB: pool}}
}

func asAccount(id string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, id))
}

func wantCode(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("code = %v (%v), want %v", st.Code(), err, code)
	}
	if reason == "" {
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok && info.GetReason() == reason {
			return
		}
	}
	t.Fatalf("no ErrorInfo reason %s in %v", reason, st.Details())
}

func TestEndpointCRUD(t *testing.T) {
	t.Parallel()
	s := endpointServer(t)
	ctx := asAccount("acct-a")
	created, err := s.CreateEndpoint(ctx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
		Name: "Alice desk", Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: "+1 (555) 123-0001", CallerIdNumber: "15550009999", RingTimeoutMs: 20000,
	}})
	if err != nil {
		t.Fatal(err)
	}
	ep := created.GetEndpoint()
	if ep.GetAddress() != "+15551230001" || ep.GetCallerIdNumber() != "+15550009999" || ep.GetAccountId() != "acct-a" || ep.GetId() == "" {
		t.Fatalf("created: %v", ep)
	}
	// Another account sees nothing of it.
	if _, err := s.GetEndpoint(asAccount("acct-b"), &originationv1.GetEndpointRequest{Id: ep.GetId()}); err == nil {
		t.Fatal("another account read the endpoint")
	} else {
		wantCode(t, err, codes.NotFound, "ENDPOINT_NOT_FOUND")
	}
	// The engine's resolver sees it with its defaults.
	leg, err := (DialPlan{Endpoints: s.Store}).Resolve(context.Background(), "acct-a", PartySpec{EndpointID: ep.GetId()})
	if err != nil || leg.DialString != "sofia/gateway/carrier/15551230001" || leg.RingTimeoutMS != 20000 || leg.CallerIDNumber != "+15550009999" {
		t.Fatalf("resolve: %+v %v", leg, err)
	}
	upd, err := s.UpdateEndpoint(ctx, &originationv1.UpdateEndpointRequest{
		Endpoint:   &originationv1.Endpoint{Id: ep.GetId(), Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1001"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kind", "address"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.GetEndpoint().GetName() != "Alice desk" || upd.GetEndpoint().GetAddress() != "1001" {
		t.Fatalf("updated: %v", upd.GetEndpoint())
	}
	if _, err := s.CreateEndpoint(ctx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
		Name: "Alice desk", Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1002"}}); err == nil {
		t.Fatal("duplicate name accepted")
	} else {
		wantCode(t, err, codes.AlreadyExists, "NAME_TAKEN")
	}
	if _, err := s.DeleteEndpoint(ctx, &originationv1.DeleteEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteEndpoint(ctx, &originationv1.DeleteEndpointRequest{Id: ep.GetId()}); err == nil {
		t.Fatal("deleted twice")
	} else {
		wantCode(t, err, codes.NotFound, "ENDPOINT_NOT_FOUND")
	}
}

func TestEndpointValidation(t *testing.T) {
	t.Parallel()
	s := endpointServer(t)
	tests := []struct {
		name string
		ep   *originationv1.Endpoint
	}{
		{"no name", &originationv1.Endpoint{Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1001"}},
		{"no kind", &originationv1.Endpoint{Name: "x", Address: "1001"}},
		{"extension with a dial string in it", &originationv1.Endpoint{Name: "x", Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1001,user/1002"}},
		{"sip user without host", &originationv1.Endpoint{Name: "x", Kind: originationv1.EndpointKind_ENDPOINT_KIND_SIP_USER, Address: "bob"}},
		{"bad number", &originationv1.Endpoint{Name: "x", Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: "call me"}},
		{"ring timeout", &originationv1.Endpoint{Name: "x", Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "1001", RingTimeoutMs: 999999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.CreateEndpoint(asAccount("acct-a"), &originationv1.CreateEndpointRequest{Endpoint: tt.ep})
			wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
		})
	}
	_, err := s.CreateEndpoint(context.Background(), &originationv1.CreateEndpointRequest{})
	wantCode(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
}

func TestEndpointPaging(t *testing.T) {
	t.Parallel()
	s := endpointServer(t)
	ctx := asAccount("acct-p")
	for _, n := range []string{"d", "a", "c", "b", "e"} {
		if _, err := s.CreateEndpoint(ctx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
			Name: n, Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: "10" + n}}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	tok := ""
	for pages := 0; pages < 10; pages++ {
		resp, err := s.ListEndpoints(ctx, &originationv1.ListEndpointsRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEndpoints() {
			names = append(names, e.GetName())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if got := fmt.Sprint(names); got != "[a b c d e]" {
		t.Fatalf("paged names = %s", got)
	}
	_, err := s.ListEndpoints(ctx, &originationv1.ListEndpointsRequest{PageToken: "garbage"})
	wantCode(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
}
