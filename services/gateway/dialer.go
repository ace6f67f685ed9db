package gateway

import (
	"context"
	"fmt"
	"io"
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
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/csv") && !strings.HasPrefix(ct, "text/plain") &&
		!strings.HasPrefix(ct, "application/octet-stream") {
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusUnsupportedMediaType,
			Message: "send the list as the body with Content-Type: text/csv"})
		return
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), metadata.Pairs(AccountHeader, p.AccountID)))
	defer cancel()
	stream, err := h.dialer.ImportList(ctx)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	first := &dialerv1.ImportListRequest{CampaignId: r.PathValue("id"), Name: r.URL.Query().Get("name"), AccountCode: r.URL.Query().Get("accountCode")}
	buf := make([]byte, 256<<10)
	var readErr error
	for {
		n, rerr := r.Body.Read(buf)
		if n > 0 || first != nil {
			msg := &dialerv1.ImportListRequest{Chunk: append([]byte(nil), buf[:n]...)}
			if first != nil {
				msg.CampaignId, msg.Name, msg.AccountCode, first = first.CampaignId, first.Name, first.AccountCode, nil
			}
			if err := stream.Send(msg); err != nil {
				break // the server ended the stream: CloseAndRecv says why
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			readErr = rerr
			break
		}
	}
	if readErr != nil {
		// Cancelling the stream (not closing it) makes the dialer drop the
		// partial list rather than keep half a file as if it were whole.
		cancel()
		if bodyTooLarge(r) {
			writeError(w, ErrorDetail{Code: ReasonRequestTooLarge, HTTPStatus: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("the file is larger than %d bytes", h.cfg.MaxImportBytes)})
		} else {
			writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: "cannot read the body: " + readErr.Error()})
		}
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
