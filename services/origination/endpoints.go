package origination

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Migrations are origination's PostgreSQL schema, applied at start with
// store.Migrate(ctx, pool, "origination", Migrations).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the migration files, for store.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// EndpointStore keeps endpoints in PostgreSQL.
type EndpointStore struct {
	DB *pgxpool.Pool
}

const endpointCols = "id, account_id, name, kind, address, caller_id_number, ring_timeout_ms, created_at, updated_at"

type endpointRow struct {
	Endpoint
	CreatedAt, UpdatedAt time.Time
}

func scanEndpoint(row pgx.Row) (*endpointRow, error) {
	var r endpointRow
	var kind string
	err := row.Scan(&r.ID, &r.AccountID, &r.Name, &kind, &r.Address, &r.CallerIDNumber, &r.RingTimeoutMS, &r.CreatedAt, &r.UpdatedAt)
	r.Kind = EndpointKind(kind)
	return &r, err
}

// Get implements Endpoints (used when a call dials an endpoint).
func (s *EndpointStore) Get(ctx context.Context, accountID, id string) (*Endpoint, error) {
	r, err := s.get(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	return &r.Endpoint, nil
}

func (s *EndpointStore) get(ctx context.Context, accountID, id string) (*endpointRow, error) {
	if !uuidRe.MatchString(id) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEndpoint, id)
	}
	r, err := scanEndpoint(s.DB.QueryRow(ctx, `SELECT `+endpointCols+` FROM origination.endpoints WHERE account_id = $1 AND id = $2`, accountID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEndpoint, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load endpoint %s: %w", id, err)
	}
	return r, nil
}

var (
	uuidRe    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	extRe     = regexp.MustCompile(`^[0-9A-Za-z_.+-]{1,64}$`)
	sipUserRe = regexp.MustCompile(`^[0-9A-Za-z_.+-]{1,64}@[0-9A-Za-z.-]{1,253}(:[0-9]{1,5})?$`)
	errNameRe = regexp.MustCompile(`^[^\x00-\x1f]{1,128}$`)
	kindToDB  = map[originationv1.EndpointKind]EndpointKind{originationv1.EndpointKind_ENDPOINT_KIND_SIP_USER: KindSIPUser, originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER: KindRegisteredUser, originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER: KindExternalNumber}
	kindToAPI = map[EndpointKind]originationv1.EndpointKind{KindSIPUser: originationv1.EndpointKind_ENDPOINT_KIND_SIP_USER, KindRegisteredUser: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, KindExternalNumber: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER}
)

// validateEndpoint checks and normalizes an endpoint's fields; the address
// ends up in a dial string, so only what a dial string can carry is allowed.
func validateEndpoint(e *Endpoint) error {
	if !errNameRe.MatchString(e.Name) {
		return fmt.Errorf("%w: name must be 1-128 printable characters", ErrInvalid)
	}
	switch e.Kind {
	case KindRegisteredUser:
		if !extRe.MatchString(e.Address) {
			return fmt.Errorf("%w: a registered user's address is its extension, e.g. 1001", ErrInvalid)
		}
	case KindSIPUser:
		if !sipUserRe.MatchString(e.Address) {
			return fmt.Errorf("%w: a SIP user's address is user@host[:port]", ErrInvalid)
		}
	case KindExternalNumber:
		n, err := NormalizeNumber(e.Address)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		e.Address = n
	default:
		return fmt.Errorf("%w: kind must be SIP_USER, REGISTERED_USER or EXTERNAL_NUMBER", ErrInvalid)
	}
	if e.CallerIDNumber != "" {
		n, err := NormalizeNumber(e.CallerIDNumber)
		if err != nil {
			return fmt.Errorf("%w: caller_id_number: %v", ErrInvalid, err)
		}
		e.CallerIDNumber = n
	}
	if e.RingTimeoutMS < 0 || e.RingTimeoutMS > 120000 {
		return fmt.Errorf("%w: ring_timeout_ms must be between 0 (default) and 120000", ErrInvalid)
	}
	return nil
}

// EndpointServer is the EndpointService gRPC API.
type EndpointServer struct {
	originationv1.UnimplementedEndpointServiceServer
	Store *EndpointStore
}

func endpointToProto(r *endpointRow) *originationv1.Endpoint {
	return &originationv1.Endpoint{
		Id: r.ID, AccountId: r.AccountID, Name: r.Name, Kind: kindToAPI[r.Kind], Address: r.Address,
		CallerIdNumber: r.CallerIDNumber, RingTimeoutMs: int32(r.RingTimeoutMS), CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt),
	}
}

func endpointFromProto(p *originationv1.Endpoint) Endpoint {
	return Endpoint{Name: strings.TrimSpace(p.GetName()), Kind: kindToDB[p.GetKind()], Address: strings.TrimSpace(p.GetAddress()),
		CallerIDNumber: strings.TrimSpace(p.GetCallerIdNumber()), RingTimeoutMS: int(p.GetRingTimeoutMs())}
}

func endpointErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return statusError(codes.AlreadyExists, "NAME_TAKEN", "an endpoint with that name already exists in the account")
	}
	if errors.Is(err, ErrUnknownEndpoint) {
		return statusError(codes.NotFound, "ENDPOINT_NOT_FOUND", err.Error())
	}
	return GRPCError(err)
}

// CreateEndpoint adds an endpoint to the caller's account.
func (s *EndpointServer) CreateEndpoint(ctx context.Context, req *originationv1.CreateEndpointRequest) (*originationv1.CreateEndpointResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	e := endpointFromProto(req.GetEndpoint())
	if err := validateEndpoint(&e); err != nil {
		return nil, GRPCError(err)
	}
	r, err := scanEndpoint(s.Store.DB.QueryRow(ctx, `INSERT INTO origination.endpoints
		(id, account_id, name, kind, address, caller_id_number, ring_timeout_ms) VALUES ($1,$2,$3,$4,$5,$6,$7)
		RETURNING `+endpointCols, ids.NewV4(), account, e.Name, string(e.Kind), e.Address, e.CallerIDNumber, e.RingTimeoutMS))
	if err != nil {
		return nil, endpointErr(err)
	}
	return &originationv1.CreateEndpointResponse{Endpoint: endpointToProto(r)}, nil
}

// GetEndpoint returns one of the caller's endpoints.
func (s *EndpointServer) GetEndpoint(ctx context.Context, req *originationv1.GetEndpointRequest) (*originationv1.GetEndpointResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.Store.get(ctx, account, req.GetId())
	if err != nil {
		return nil, endpointErr(err)
	}
	return &originationv1.GetEndpointResponse{Endpoint: endpointToProto(r)}, nil
}

// ListEndpoints pages through the caller's endpoints by name, then id.
func (s *EndpointServer) ListEndpoints(ctx context.Context, req *originationv1.ListEndpointsRequest) (*originationv1.ListEndpointsResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	afterName, afterID := "", "00000000-0000-0000-0000-000000000000"
	if tok := req.GetPageToken(); tok != "" {
		n, id, ok := strings.Cut(tok, "\x1f")
		if !ok || !uuidRe.MatchString(id) {
			return nil, statusError(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "page_token is not one this API issued")
		}
		afterName, afterID = n, id
	}
	rows, err := s.Store.DB.Query(ctx, `SELECT `+endpointCols+` FROM origination.endpoints
		WHERE account_id = $1 AND (name, id) > ($2, $3::uuid) ORDER BY name, id LIMIT $4`, account, afterName, afterID, size+1)
	if err != nil {
		return nil, GRPCError(fmt.Errorf("list endpoints: %w", err))
	}
	defer rows.Close()
	resp := &originationv1.ListEndpointsResponse{}
	for rows.Next() {
		r, err := scanEndpoint(rows)
		if err != nil {
			return nil, GRPCError(fmt.Errorf("list endpoints: %w", err))
		}
		if len(resp.Endpoints) == size {
			last := resp.Endpoints[size-1]
			resp.NextPageToken = last.Name + "\x1f" + last.Id
			break
		}
		resp.Endpoints = append(resp.Endpoints, endpointToProto(r))
	}
	return resp, rows.Err()
}

// UpdateEndpoint changes the fields named in update_mask (all changeable
// fields for "*"; the non-zero ones for an empty mask).
func (s *EndpointServer) UpdateEndpoint(ctx context.Context, req *originationv1.UpdateEndpointRequest) (*originationv1.UpdateEndpointResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetEndpoint()
	cur, err := s.Store.get(ctx, account, in.GetId())
	if err != nil {
		return nil, endpointErr(err)
	}
	next := cur.Endpoint
	patch := endpointFromProto(in)
	paths := maskPaths(req.GetUpdateMask(), in)
	for _, p := range paths {
		switch p {
		case "name":
			next.Name = patch.Name
		case "kind":
			next.Kind = patch.Kind
		case "address":
			next.Address = patch.Address
		case "caller_id_number":
			next.CallerIDNumber = patch.CallerIDNumber
		case "ring_timeout_ms":
			next.RingTimeoutMS = patch.RingTimeoutMS
		default:
			return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "update_mask: "+p+" cannot be changed")
		}
	}
	if err := validateEndpoint(&next); err != nil {
		return nil, GRPCError(err)
	}
	r, err := scanEndpoint(s.Store.DB.QueryRow(ctx, `UPDATE origination.endpoints SET name=$3, kind=$4, address=$5,
		caller_id_number=$6, ring_timeout_ms=$7, updated_at=now() WHERE account_id=$1 AND id=$2 RETURNING `+endpointCols,
		account, cur.ID, next.Name, string(next.Kind), next.Address, next.CallerIDNumber, next.RingTimeoutMS))
	if err != nil {
		return nil, endpointErr(err)
	}
	return &originationv1.UpdateEndpointResponse{Endpoint: endpointToProto(r)}, nil
}

func maskPaths(m *fieldmaskpb.FieldMask, in *originationv1.Endpoint) []string {
	all := []string{"name", "kind", "address", "caller_id_number", "ring_timeout_ms"}
	if m == nil || len(m.GetPaths()) == 0 {
		var out []string
		if in.GetName() != "" {
			out = append(out, "name")
		}
		if in.GetKind() != originationv1.EndpointKind_ENDPOINT_KIND_UNSPECIFIED {
			out = append(out, "kind")
		}
		if in.GetAddress() != "" {
			out = append(out, "address")
		}
		if in.GetCallerIdNumber() != "" {
			out = append(out, "caller_id_number")
		}
		if in.GetRingTimeoutMs() != 0 {
			out = append(out, "ring_timeout_ms")
		}
		return out
	}
	var out []string
	for _, p := range m.GetPaths() {
		if p == "*" {
			return all
		}
		if p == "id" || p == "account_id" || p == "created_at" || p == "updated_at" {
			continue // output-only or identity: ignored as grpc-gateway may include them
		}
		out = append(out, p)
	}
	return out
}

// DeleteEndpoint removes one of the caller's endpoints.
func (s *EndpointServer) DeleteEndpoint(ctx context.Context, req *originationv1.DeleteEndpointRequest) (*originationv1.DeleteEndpointResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if !uuidRe.MatchString(req.GetId()) {
		return nil, endpointErr(fmt.Errorf("%w: %s", ErrUnknownEndpoint, req.GetId()))
	}
	tag, err := s.Store.DB.Exec(ctx, `DELETE FROM origination.endpoints WHERE account_id=$1 AND id=$2`, account, req.GetId())
	if err != nil {
		return nil, GRPCError(fmt.Errorf("delete endpoint: %w", err))
	}
	if tag.RowsAffected() == 0 {
		return nil, endpointErr(fmt.Errorf("%w: %s", ErrUnknownEndpoint, req.GetId()))
	}
	return &originationv1.DeleteEndpointResponse{}, nil
}
