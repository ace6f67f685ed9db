package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountsv1 "github.com/ringback/ringback/proto/gen/go/ringback/accounts/v1"
	"github.com/ringback/ringback/services/internal/logging"
)

// Me may stand for the caller's own account id wherever an account id is
// expected (GET /v1/accounts/me), for key holders who don't know it.
const Me = "me"

// AccountServer implements accountsv1.AccountServiceServer over an
// AccountStore. Who may do what comes from the context's Principal
// (NewContext): the operator everything; an account's key only reading its
// own account, changing its ip_allowlist, and managing its own keys.
type AccountServer struct {
	accountsv1.UnimplementedAccountServiceServer
	store *AccountStore
	log   *slog.Logger
}

// NewAccountServer returns the AccountService over store.
func NewAccountServer(store *AccountStore, log *slog.Logger) *AccountServer {
	return &AccountServer{store: store, log: log}
}

// caller returns the request's principal, or Unauthenticated.
func caller(ctx context.Context) (*Principal, error) {
	p := PrincipalFromContext(ctx)
	if p == nil {
		return nil, ErrUnauthenticated
	}
	if p.Suspended {
		return nil, ErrSuspended
	}
	return p, nil
}

func requireOperator(ctx context.Context) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	if !p.Operator {
		return errorf(ErrPermission, "only the installation's operator may do this")
	}
	return nil
}

// ownAccount resolves id (or Me) to an account id the caller may act on.
func ownAccount(ctx context.Context, id string) (string, error) {
	p, err := caller(ctx)
	if err != nil {
		return "", err
	}
	if p.Operator {
		if id == Me {
			return "", invalidf("the operator has no account of its own: give an account id")
		}
		if id == "" {
			return "", invalidf("account id is required")
		}
		return id, nil
	}
	if id == Me || id == p.AccountID {
		return p.AccountID, nil
	}
	if id == "" {
		return "", invalidf("account id is required")
	}
	return "", errorf(ErrPermission, "an API key may only act on its own account")
}

// grpcErr passes client errors through and hides the others behind
// INTERNAL (logged).
func (s *AccountServer) grpcErr(ctx context.Context, op string, err error) error {
	if _, ok := asError(err); ok {
		return err
	}
	if ctx.Err() != nil {
		return newError(codes.DeadlineExceeded, "TIMEOUT", "the request took too long")
	}
	s.log.Error(op, logging.Err(err))
	return newError(codes.Internal, ReasonInternal, "internal error")
}

func accountToProto(a *Account) *accountsv1.Account {
	out := &accountsv1.Account{Id: a.ID, Name: a.Name, Status: statusToProto(a.Status),
		CreatedAt: timestamppb.New(a.CreatedAt), UpdatedAt: timestamppb.New(a.UpdatedAt)}
	for _, p := range a.IPAllowlist {
		out.IpAllowlist = append(out.IpAllowlist, p.String())
	}
	return out
}

func statusToProto(s string) accountsv1.AccountStatus {
	switch s {
	case StatusActive:
		return accountsv1.AccountStatus_ACCOUNT_STATUS_ACTIVE
	case StatusSuspended:
		return accountsv1.AccountStatus_ACCOUNT_STATUS_SUSPENDED
	}
	return accountsv1.AccountStatus_ACCOUNT_STATUS_UNSPECIFIED
}

func statusFromProto(s accountsv1.AccountStatus) (string, error) {
	switch s {
	case accountsv1.AccountStatus_ACCOUNT_STATUS_ACTIVE:
		return StatusActive, nil
	case accountsv1.AccountStatus_ACCOUNT_STATUS_SUSPENDED:
		return StatusSuspended, nil
	}
	return "", invalidf("status: want ACCOUNT_STATUS_ACTIVE or ACCOUNT_STATUS_SUSPENDED")
}

func keyToProto(k *APIKey) *accountsv1.ApiKey {
	out := &accountsv1.ApiKey{Id: k.ID, AccountId: k.AccountID, Prefix: k.Prefix, Name: k.Name,
		CreatedAt: timestamppb.New(k.CreatedAt)}
	if !k.LastUsedAt.IsZero() {
		out.LastUsedAt = timestamppb.New(k.LastUsedAt)
	}
	if !k.RevokedAt.IsZero() {
		out.RevokedAt = timestamppb.New(k.RevokedAt)
	}
	return out
}

func parseAllowlist(in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	seen := map[netip.Prefix]bool{}
	for _, s := range in {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, invalidf("ip_allowlist: %v", err)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, invalidf("page_size must not be negative")
	case n == 0:
		return 50, nil
	case n > 500:
		return 500, nil
	}
	return int(n), nil
}

// CreateAccount creates an account (operator only).
func (s *AccountServer) CreateAccount(ctx context.Context, req *accountsv1.CreateAccountRequest) (*accountsv1.CreateAccountResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	in := req.GetAccount()
	if in == nil {
		return nil, invalidf("account is required")
	}
	status := StatusActive
	if in.GetStatus() != accountsv1.AccountStatus_ACCOUNT_STATUS_UNSPECIFIED {
		var err error
		if status, err = statusFromProto(in.GetStatus()); err != nil {
			return nil, err
		}
	}
	allow, err := parseAllowlist(in.GetIpAllowlist())
	if err != nil {
		return nil, err
	}
	a, err := s.store.CreateAccount(ctx, in.GetName(), status, allow)
	if err != nil {
		return nil, s.grpcErr(ctx, "create account", err)
	}
	s.log.Info("account created", logging.AccountID(a.ID), "name", a.Name)
	return &accountsv1.CreateAccountResponse{Account: accountToProto(a)}, nil
}

// GetAccount returns the caller's account (any account for the operator).
func (s *AccountServer) GetAccount(ctx context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	id, err := ownAccount(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	a, err := s.store.GetAccount(ctx, id)
	if err != nil {
		return nil, s.grpcErr(ctx, "get account", err)
	}
	return &accountsv1.GetAccountResponse{Account: accountToProto(a)}, nil
}

// ListAccounts pages through every account by name (operator only). The
// page token is the last name of the previous page, base64url-encoded.
func (s *AccountServer) ListAccounts(ctx context.Context, req *accountsv1.ListAccountsRequest) (*accountsv1.ListAccountsResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after := ""
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !ValidAccountName(string(b)) {
			return nil, invalidf("page_token is not one this API returned")
		}
		after = string(b)
	}
	list, err := s.store.ListAccounts(ctx, after, size+1)
	if err != nil {
		return nil, s.grpcErr(ctx, "list accounts", err)
	}
	resp := &accountsv1.ListAccountsResponse{}
	for i, a := range list {
		if i == size {
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(list[i-1].Name))
			break
		}
		resp.Accounts = append(resp.Accounts, accountToProto(a))
	}
	return resp, nil
}

// mutableAccountFields are what UpdateAccount may change, by mask path.
var mutableAccountFields = []string{"name", "status", "ip_allowlist"}

// UpdateAccount changes the fields of the mask. An account's own key may
// change only ip_allowlist; name and status are the operator's.
func (s *AccountServer) UpdateAccount(ctx context.Context, req *accountsv1.UpdateAccountRequest) (*accountsv1.UpdateAccountResponse, error) {
	in := req.GetAccount()
	if in == nil {
		return nil, invalidf("account is required")
	}
	id, err := ownAccount(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	p := PrincipalFromContext(ctx)

	var paths []string
	switch m := req.GetUpdateMask().GetPaths(); {
	case len(m) == 1 && m[0] == "*":
		paths = mutableAccountFields
	case len(m) > 0:
		paths = m
	default: // gRPC without a mask: the fields that are set
		if in.GetName() != "" {
			paths = append(paths, "name")
		}
		if in.GetStatus() != accountsv1.AccountStatus_ACCOUNT_STATUS_UNSPECIFIED {
			paths = append(paths, "status")
		}
		if len(in.GetIpAllowlist()) > 0 {
			paths = append(paths, "ip_allowlist")
		}
	}
	var u AccountUpdate
	for _, path := range paths {
		switch path {
		case "id": // the JSON body may repeat the id of the URL
			if in.GetId() != id && in.GetId() != Me {
				return nil, invalidf("account.id does not match the URL")
			}
		case "name":
			if !p.Operator {
				return nil, errorf(ErrPermission, "only the operator may rename an account")
			}
			name := in.GetName()
			u.Name = &name
		case "status":
			if !p.Operator {
				return nil, errorf(ErrPermission, "only the operator may change an account's status")
			}
			st, err := statusFromProto(in.GetStatus())
			if err != nil {
				return nil, err
			}
			u.Status = &st
		case "ip_allowlist", "ipAllowlist":
			allow, err := parseAllowlist(in.GetIpAllowlist())
			if err != nil {
				return nil, err
			}
			u.IPAllowlist = &allow
		case "created_at", "updated_at", "createdAt", "updatedAt":
			return nil, invalidf("update_mask: %s is output only", path)
		default:
			return nil, invalidf("update_mask: unknown field %q (want name, status or ip_allowlist)", path)
		}
	}
	var a *Account
	if u == (AccountUpdate{}) {
		a, err = s.store.GetAccount(ctx, id)
	} else {
		a, err = s.store.UpdateAccount(ctx, id, u)
	}
	if err != nil {
		return nil, s.grpcErr(ctx, "update account", err)
	}
	s.log.Info("account updated", logging.AccountID(a.ID), "fields", paths, "operator", p.Operator)
	return &accountsv1.UpdateAccountResponse{Account: accountToProto(a)}, nil
}

// CreateApiKey makes a new key; its secret is in the response only.
func (s *AccountServer) CreateApiKey(ctx context.Context, req *accountsv1.CreateApiKeyRequest) (*accountsv1.CreateApiKeyResponse, error) {
	id, err := ownAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	k, secret, err := s.store.CreateKey(ctx, id, req.GetName())
	if err != nil {
		return nil, s.grpcErr(ctx, "create API key", err)
	}
	s.log.Info("API key created", logging.AccountID(id), "key_id", k.ID, "prefix", k.Prefix)
	return &accountsv1.CreateApiKeyResponse{ApiKey: keyToProto(k), Secret: secret}, nil
}

// ListApiKeys pages through an account's keys, newest first. The page
// token is "<created_at unix µs>.<key id>" of the previous page's last key,
// base64url-encoded.
func (s *AccountServer) ListApiKeys(ctx context.Context, req *accountsv1.ListApiKeysRequest) (*accountsv1.ListApiKeysResponse, error) {
	id, err := ownAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var after *KeyCursor
	if t := req.GetPageToken(); t != "" {
		if after, err = decodeKeyCursor(t); err != nil {
			return nil, err
		}
	}
	list, err := s.store.ListKeys(ctx, id, after, size+1)
	if err != nil {
		return nil, s.grpcErr(ctx, "list API keys", err)
	}
	resp := &accountsv1.ListApiKeysResponse{}
	for i, k := range list {
		if i == size {
			last := list[i-1]
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString(
				[]byte(strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + "." + last.ID))
			break
		}
		resp.ApiKeys = append(resp.ApiKeys, keyToProto(k))
	}
	return resp, nil
}

func decodeKeyCursor(t string) (*KeyCursor, error) {
	bad := invalidf("page_token is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return nil, bad
	}
	us, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !uuidRe.MatchString(id) {
		return nil, bad
	}
	return &KeyCursor{CreatedAt: time.UnixMicro(n), ID: id}, nil
}

// RevokeApiKey revokes a key of the account.
func (s *AccountServer) RevokeApiKey(ctx context.Context, req *accountsv1.RevokeApiKeyRequest) (*accountsv1.RevokeApiKeyResponse, error) {
	id, err := ownAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	k, err := s.store.RevokeKey(ctx, id, req.GetId())
	if err != nil {
		return nil, s.grpcErr(ctx, "revoke API key", err)
	}
	s.log.Info("API key revoked", logging.AccountID(id), "key_id", k.ID, "prefix", k.Prefix)
	return &accountsv1.RevokeApiKeyResponse{ApiKey: keyToProto(k)}, nil
}

var _ accountsv1.AccountServiceServer = (*AccountServer)(nil)

// String makes a Principal readable in logs without secrets.
func (p *Principal) String() string {
	if p == nil {
		return "<nobody>"
	}
	if p.Operator {
		return "operator"
	}
	return fmt.Sprintf("account %s (%s) key %s", p.AccountName, p.AccountID, p.KeyID)
}
