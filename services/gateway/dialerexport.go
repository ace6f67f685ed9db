package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

// Paths of the dialer's CSV reports, served by the gateway itself (a
// server stream becomes a streamed download, as /v1/cdrs:export).
const (
	// dialerRecordsExportPath streams DialerService.ExportRecords; query
	// parameters status and timeZone.
	dialerRecordsExportPath = "/v1/dialer/campaigns/{id}/records:export"
	// dialerReportExportPath streams DialerService.ExportReport.
	dialerReportExportPath = "/v1/dialer/campaigns/{id}/report:export"
)

// isDialerExport tells the CSV reports, whose downloads are bounded by
// ImportTimeout rather than RequestTimeout.
func isDialerExport(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/dialer/campaigns/") &&
		(strings.HasSuffix(r.URL.Path, "/records:export") || strings.HasSuffix(r.URL.Path, "/report:export"))
}

// exportDialerRecords streams a campaign's detailed report as a CSV
// download.
func (h *handler) exportDialerRecords(w http.ResponseWriter, r *http.Request) {
	req := &dialerv1.ExportRecordsRequest{}
	ctx, ok := h.dialerExport(w, r, req)
	if !ok {
		return
	}
	req.CampaignId = r.PathValue("id")
	stream, err := h.dialer.ExportRecords(ctx, req)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	h.streamCSV(w, r, fmt.Sprintf("campaign-%s-records.csv", safeFileName(req.CampaignId)), func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
}

// exportDialerReport streams a campaign's statistics as a CSV download.
func (h *handler) exportDialerReport(w http.ResponseWriter, r *http.Request) {
	req := &dialerv1.ExportReportRequest{}
	ctx, ok := h.dialerExport(w, r, req)
	if !ok {
		return
	}
	req.CampaignId = r.PathValue("id")
	stream, err := h.dialer.ExportReport(ctx, req)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	h.streamCSV(w, r, fmt.Sprintf("campaign-%s-report.csv", safeFileName(req.CampaignId)), func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
}

// dialerExport authenticates an export (an account's: campaigns are not
// the operator's), reads its query parameters into req and returns the
// context of the call to the dialer.
func (h *handler) dialerExport(w http.ResponseWriter, r *http.Request, req proto.Message) (context.Context, bool) {
	p, ok := h.authenticated(w, r)
	if !ok {
		return nil, false
	}
	if p.Operator {
		writeError(w, ErrorDetail{Code: ReasonPermissionDenied, HTTPStatus: http.StatusForbidden,
			Message: "campaigns belong to an account: use one of its API keys"})
		return nil, false
	}
	if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray(nil)); err != nil {
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: err.Error()})
		return nil, false
	}
	return metadata.NewOutgoingContext(r.Context(), metadata.Pairs(AccountHeader, p.AccountID)), true
}
