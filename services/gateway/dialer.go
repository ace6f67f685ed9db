package gateway

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

// dialerListsPath imports a recipient list: the CSV is the body, streamed
// into DialerService.ImportList (the rest of /v1/dialer is grpc-gateway's).
const dialerListsPath = "/v1/dialer/campaigns/{id}/lists"

func isListImport(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/dialer/campaigns/") && strings.HasSuffix(r.URL.Path, "/lists")
}

// importList streams a CSV body (?name=, ?accountCode=) into the dialer.
// Good rows are imported and bad ones reported with their line:
// 200 {"list": RecipientList, "errors": [{"line","message"}], "errorCount"}.
func (h *handler) importList(w http.ResponseWriter, r *http.Request) {
	p, ok := h.authenticated(w, r)
	if !ok {
		return
	}
	if p.Operator {
		writeError(w, ErrorDetail{Code: ReasonPermissionDenied, HTTPStatus: http.StatusForbidden,
			Message: "recipient lists belong to an account: use one of its API keys"})
		return
	}
	if !csvUpload(w, r, "the list") {
		return
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), metadata.Pairs(AccountHeader, p.AccountID)))
	defer cancel()
	stream, err := h.dialer.ImportList(ctx)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	q := r.URL.Query()
	if err := streamBody(r, func(chunk []byte, first bool) error {
		msg := &dialerv1.ImportListRequest{Chunk: chunk}
		if first {
			msg.CampaignId, msg.Name, msg.AccountCode = r.PathValue("id"), q.Get("name"), q.Get("accountCode")
		}
		return stream.Send(msg)
	}); err != nil {
		// Cancelling the stream (not closing it) makes the dialer drop the
		// partial list rather than keep half a file as if it were whole.
		cancel()
		h.bodyReadFailed(w, r, err)
		return
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	b, err := protojson.MarshalOptions{}.Marshal(resp)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
