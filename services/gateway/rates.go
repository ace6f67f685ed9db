package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/logging"
)

// Tariff CSV routes, served here rather than by grpc-gateway: the file is
// the raw request (or response) body, streamed to (or from) rating in
// chunks, so a deck of millions of rates never sits whole in memory here.
const (
	ratesImportPath = "/v1/tariffs/{id}/rates:import"
	ratesExportPath = "/v1/tariffs/{id}/rates:export"
)

// ReasonInvalidRates: the imported file had bad rows (HTTP 422).
const ReasonInvalidRates = "INVALID_RATES"

func isImport(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/tariffs/") && strings.HasSuffix(r.URL.Path, "/rates:import")
}

// operatorOnly authenticates a request that only the operator may make.
func (h *handler) operatorOnly(w http.ResponseWriter, r *http.Request) bool {
	p, ok := h.authenticated(w, r)
	if ok && !p.Operator {
		writeError(w, ErrorDetail{Code: ReasonPermissionDenied, HTTPStatus: http.StatusForbidden,
			Message: "tariffs are managed with the operator token"})
		return false
	}
	return ok
}

// importRatesBody is the JSON answer of an import with bad rows.
type importRatesBody struct {
	Error      ErrorDetail       `json:"error"`
	RowErrors  []json.RawMessage `json:"rowErrors"`
	ErrorCount int32             `json:"errorCount"`
}

// importRates streams a CSV body into TariffService.ImportRates.
// ?mode=merge merges instead of replacing.
func (h *handler) importRates(w http.ResponseWriter, r *http.Request) {
	if !h.operatorOnly(w, r) {
		return
	}
	mode := ratingv1.ImportMode_IMPORT_MODE_REPLACE
	switch r.URL.Query().Get("mode") {
	case "", "replace":
	case "merge":
		mode = ratingv1.ImportMode_IMPORT_MODE_MERGE
	default:
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: "mode is replace or merge"})
		return
	}
	if !csvUpload(w, r, "the rates") {
		return
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs(RoleHeader, "operator"))
	stream, err := h.tariffs.ImportRates(ctx)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	if err := streamBody(r, func(chunk []byte, first bool) error {
		msg := &ratingv1.ImportRatesRequest{Chunk: chunk}
		if first {
			msg.TariffId, msg.Mode = r.PathValue("id"), mode
		}
		return stream.Send(msg)
	}); err != nil {
		h.bodyReadFailed(w, r, err)
		return
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if resp.GetErrorCount() > 0 {
		body := importRatesBody{ErrorCount: resp.GetErrorCount(), Error: ErrorDetail{Code: ReasonInvalidRates,
			HTTPStatus: http.StatusUnprocessableEntity,
			Message:    fmt.Sprintf("%d bad rows; nothing was imported (see rowErrors)", resp.GetErrorCount())}}
		for _, e := range resp.GetErrors() {
			b, _ := marshaler.Marshal(e)
			body.RowErrors = append(body.RowErrors, b)
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	b, err := protojson.MarshalOptions{}.Marshal(resp)
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	_, _ = w.Write(b)
}

// exportRates streams TariffService.ExportRates as a CSV download.
func (h *handler) exportRates(w http.ResponseWriter, r *http.Request) {
	if !h.operatorOnly(w, r) {
		return
	}
	ctx := metadata.NewOutgoingContext(r.Context(), metadata.Pairs(RoleHeader, "operator"))
	stream, err := h.tariffs.ExportRates(ctx, &ratingv1.ExportRatesRequest{TariffId: r.PathValue("id")})
	if err != nil {
		h.serviceFailure(w, r, err)
		return
	}
	h.streamCSV(w, r, fmt.Sprintf("tariff-%s.csv", safeFileName(r.PathValue("id"))), func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
}

// streamCSV sends a server stream of CSV chunks as a download. The first
// chunk tells whether the request was valid (a service answers its errors
// before any data): only then are the headers committed. An error later
// cuts the transfer short, which the client sees as truncated rather than
// as a silently shorter file.
func (h *handler) streamCSV(w http.ResponseWriter, r *http.Request, filename string, recv func() ([]byte, error)) {
	chunk, err := recv()
	if err != nil && !errors.Is(err, io.EOF) {
		h.serviceFailure(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, filename))
	w.Header().Set("Cache-Control", "no-store")
	for err == nil {
		if _, werr := w.Write(chunk); werr != nil {
			return // the client went away
		}
		chunk, err = recv()
	}
	if !errors.Is(err, io.EOF) {
		h.log.Error("CSV download failed mid-stream", "path", r.URL.Path, logging.Err(err))
		panic(http.ErrAbortHandler)
	}
}

func (h *handler) serviceFailure(w http.ResponseWriter, r *http.Request, err error) {
	d, internal := errorDetail(err)
	if internal {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", d.Code, logging.Err(err))
	}
	writeError(w, d)
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
