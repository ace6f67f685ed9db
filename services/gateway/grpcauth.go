package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
)

// UnaryAuthInterceptor authenticates gRPC calls to AccountService as the
// HTTP edge does, for when the gateway also serves it over gRPC: metadata
// "authorization: Bearer <operator token or API key>", the account's IP
// allowlist checked against the peer's address (no proxies on gRPC), and
// the Principal put in the context for AccountServer. Calls to other
// services on the same server (the health service) pass untouched. Without
// it, AccountServer refuses every gRPC call as UNAUTHENTICATED.
func UnaryAuthInterceptor(cfg Config, store *AccountStore) grpc.UnaryServerInterceptor {
	operator := []byte(cfg.OperatorToken.Reveal())
	prefix := "/" + accountsv1.AccountService_ServiceDesc.ServiceName + "/"
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		var token string
		if v := md.Get("authorization"); len(v) == 1 {
			if scheme, t, ok := strings.Cut(strings.TrimSpace(v[0]), " "); ok && strings.EqualFold(scheme, "Bearer") {
				token = strings.TrimSpace(t)
			}
		}
		if token == "" {
			return nil, errorf(ErrUnauthenticated, "missing API key: send metadata authorization: Bearer <key>")
		}
		p, err := authenticateToken(ctx, operator, store, token)
		if err != nil {
			if _, ok := asError(err); ok {
				return nil, errorf(ErrUnauthenticated, "invalid API key")
			}
			return nil, newError(codes.Unavailable, ReasonUnavailable, "cannot check the API key right now, try again later")
		}
		if p.Suspended {
			return nil, ErrSuspended
		}
		addr := peerAddr(ctx)
		if !p.Allows(addr) {
			return nil, newError(codes.PermissionDenied, ReasonIPNotAllowed,
				fmt.Sprintf("requests from %s are not allowed for this account", addrText(addr)))
		}
		return handler(NewContext(ctx, p), req)
	}
}

func peerAddr(ctx context.Context) netip.Addr {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return netip.Addr{}
	}
	if tcp, ok := pr.Addr.(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(tcp.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
