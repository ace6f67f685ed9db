package gateway

import (
	"context"
	"net/netip"
)

// Principal is who a request acts as: the installation's operator, or one
// account through one of its API keys. It is immutable once made (cached
// principals are shared between requests).
type Principal struct {
	// Operator is true for the operator token: every account, no allowlist.
	Operator bool
	// AccountID, AccountName and KeyID identify the account and the key
	// used (empty for the operator).
	AccountID   string
	AccountName string
	KeyID       string
	// Suspended accounts authenticate but may do nothing.
	Suspended bool
	// Allowlist is the account's IP allowlist; empty: any address.
	Allowlist []netip.Prefix
}

// Allows reports whether the principal may be used from addr: the operator
// always, an account when its allowlist is empty or contains addr. An
// invalid addr (an unparsable X-Forwarded-For) is allowed only by an empty
// allowlist.
func (p *Principal) Allows(addr netip.Addr) bool {
	if p.Operator || len(p.Allowlist) == 0 {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, pfx := range p.Allowlist {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

type principalKey struct{}

// NewContext returns ctx carrying p. The HTTP handler sets it after
// authenticating; AccountServer reads it (through PrincipalFromContext) to
// decide what the caller may do. Whoever serves AccountService over gRPC
// must set it the same way (e.g. from an interceptor that authenticates).
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal NewContext stored, or nil.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
