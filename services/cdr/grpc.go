package cdr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// Server serves CdrService.
type Server struct {
	cdrv1.UnimplementedCdrServiceServer
	Store *Store
	Log   *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Register adds CdrService, CommentService and StatisticsService.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	cdrv1.RegisterCdrServiceServer(r, s)
	cdrv1.RegisterCommentServiceServer(r, &CommentServer{Store: s.Store, Now: s.Now})
	cdrv1.RegisterStatisticsServiceServer(r, &StatisticsServer{Store: s.Store, Now: s.Now})
}

// pageToken is the position a ListCdrs page ended at. A listing without
// an end time ends "now", which would move between pages: the token pins
// the first page's end (E). Sum is a digest of the query, so that a token is
// not reused with another query.
type pageToken struct {
	T   int64  `json:"t"` // created_at, Unix microseconds (the stored precision)
	ID  string `json:"i"`
	E   int64  `json:"e"` // the query's end, Unix microseconds
	Sum string `json:"q"`
}

// querySum is a digest of what a listing depends on besides its position.
func querySum(q Query, ascending bool) string {
	b, _ := json.Marshal(struct {
		Q Query
		A bool
	}{q, ascending})
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

func encodeToken(c Cursor, q Query, sum string) string {
	b, _ := json.Marshal(pageToken{T: c.CreatedAt.UnixMicro(), ID: c.CallID, E: q.End.UnixMicro(), Sum: sum})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string) (pageToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var pt pageToken
	if err == nil {
		err = json.Unmarshal(b, &pt)
	}
	if err != nil || pt.ID == "" {
		return pageToken{}, ErrInvalidPageToken.WithMsg("page_token is not one this service returned")
	}
	return pt, nil
}

// ListCdrs lists a page of the account's records.
func (s *Server) ListCdrs(ctx context.Context, req *cdrv1.ListCdrsRequest) (*cdrv1.ListCdrsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > MaxPageSize:
		return nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("page_size is 0 to %d", MaxPageSize))
	case size == 0:
		size = DefaultPageSize
	}
	offset := int(req.GetOffset())
	if offset < 0 || offset > MaxOffset {
		return nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("offset is 0 to %d", MaxOffset))
	}
	now := time.UnixMicro(s.now().UnixMicro()).UTC()
	var (
		after *Cursor
		pt    pageToken
	)
	if tok := req.GetPageToken(); tok != "" {
		if pt, err = decodeToken(tok); err != nil {
			return nil, err
		}
		now, offset = time.UnixMicro(pt.E).UTC(), 0
		after = &Cursor{CreatedAt: time.UnixMicro(pt.T).UTC(), CallID: pt.ID}
	}
	q, err := QueryFrom(account, req.GetFilter(), now)
	if err != nil {
		return nil, err
	}
	sum := querySum(q, req.GetAscending())
	if after != nil && pt.Sum != sum {
		return nil, ErrInvalidPageToken.WithMsg("page_token belongs to another query: keep the filter and order of the first page")
	}
	rows, err := s.Store.List(ctx, q, after, req.GetAscending(), offset, size+1)
	if err != nil {
		return nil, err
	}
	resp := &cdrv1.ListCdrsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		resp.NextPageToken = encodeToken(Cursor{CreatedAt: last.CreatedAt, CallID: last.CallID}, q, sum)
	}
	if resp.Cdrs, err = s.records(ctx, account, rows); err != nil {
		return nil, err
	}
	return resp, nil
}

// records decodes stored records and attaches their comments.
func (s *Server) records(ctx context.Context, account string, rows []Stored) ([]*cdrv1.Cdr, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]string, len(rows))
	out := make([]*cdrv1.Cdr, len(rows))
	for i, r := range rows {
		c := &originationv1.Call{}
		if err := proto.Unmarshal(r.Call, c); err != nil {
			return nil, fmt.Errorf("decode record %s: %w", r.CallID, err)
		}
		out[i], ids[i] = Record(c, r.RecordedAt), r.CallID
	}
	comments, err := s.Store.CommentsFor(ctx, account, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Comments = comments[ids[i]]
	}
	return out, nil
}

// GetCdr returns one record with its timeline and comments.
func (s *Server) GetCdr(ctx context.Context, req *cdrv1.GetCdrRequest) (*cdrv1.GetCdrResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetCallId()
	if id == "" || len(id) > 64 {
		return nil, ErrInvalidArgument.WithMsg("call_id is required (at most 64 characters)")
	}
	st, err := s.Store.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	recs, err := s.records(ctx, account, []Stored{st})
	if err != nil {
		return nil, err
	}
	rec := recs[0]
	rec.Timeline = Timeline(rec.GetCall())
	return &cdrv1.GetCdrResponse{Cdr: rec}, nil
}
