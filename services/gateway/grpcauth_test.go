package gateway

import (
	"context"
	"net"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
)

// AccountService over gRPC, behind UnaryAuthInterceptor, answers as it does
// over HTTP, with the reasons in ErrorInfo.
func TestAccountServiceOverGRPC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	idA, keyA := e.newAccount(t, "grpc-a")
	idB, _ := e.newAccount(t, "grpc-b")
	_, keyLocked := e.newAccount(t, "grpc-locked", "203.0.113.0/24")

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryAuthInterceptor(e.cfg, e.store)))
	accountsv1.RegisterAccountServiceServer(srv, NewAccountServer(e.store, testLogger(t)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop(); <-served })
	client := accountsv1.NewAccountServiceClient(conn)

	with := func(key string) context.Context {
		if key == "" {
			return context.Background()
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	}
	for _, tc := range []struct {
		name   string
		key    string
		call   func(ctx context.Context) error
		code   codes.Code
		reason string
	}{
		{"own account", keyA, func(ctx context.Context) error {
			_, err := client.GetAccount(ctx, &accountsv1.GetAccountRequest{Id: idA})
			return err
		}, codes.OK, ""},
		{"other account", keyA, func(ctx context.Context) error {
			_, err := client.GetAccount(ctx, &accountsv1.GetAccountRequest{Id: idB})
			return err
		}, codes.PermissionDenied, ReasonPermissionDenied},
		{"no key", "", func(ctx context.Context) error {
			_, err := client.GetAccount(ctx, &accountsv1.GetAccountRequest{Id: idA})
			return err
		}, codes.Unauthenticated, ReasonUnauthenticated},
		{"operator lists", testOperatorToken, func(ctx context.Context) error {
			_, err := client.ListAccounts(ctx, &accountsv1.ListAccountsRequest{})
			return err
		}, codes.OK, ""},
		{"operator creates, name taken", testOperatorToken, func(ctx context.Context) error {
			_, err := client.CreateAccount(ctx, &accountsv1.CreateAccountRequest{Account: &accountsv1.Account{Name: "GRPC-A"}})
			return err
		}, codes.AlreadyExists, ReasonNameTaken},
		{"gRPC update without a mask sets what is given", keyA, func(ctx context.Context) error {
			_, err := client.UpdateAccount(ctx, &accountsv1.UpdateAccountRequest{Account: &accountsv1.Account{Id: idA, IpAllowlist: []string{"127.0.0.1"}}})
			return err
		}, codes.OK, ""},
		{"allowlist applies to the peer", keyLocked, func(ctx context.Context) error {
			_, err := client.GetAccount(ctx, &accountsv1.GetAccountRequest{Id: Me})
			return err
		}, codes.PermissionDenied, ReasonIPNotAllowed},
		{"health needs no key", "", func(ctx context.Context) error {
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(with(tc.key))
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v: %v", st.Code(), tc.code, err)
			}
			if tc.reason == "" {
				return
			}
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == tc.reason && info.GetDomain() == ErrorDomain {
					return
				}
			}
			t.Fatalf("no ErrorInfo with reason %s in %v", tc.reason, st.Details())
		})
	}
}
