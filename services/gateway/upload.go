package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// CSV uploads (a tariff's rates, a recipient list) are request bodies
// streamed into a service's client-streaming method.

// csvUpload refuses a body that is not CSV, naming what it should be.
func csvUpload(w http.ResponseWriter, r *http.Request, what string) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/csv") && !strings.HasPrefix(ct, "text/plain") &&
		!strings.HasPrefix(ct, "application/octet-stream") {
		writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusUnsupportedMediaType,
			Message: "send " + what + " as the body with Content-Type: text/csv"})
		return false
	}
	return true
}

// streamBody sends the request body in chunks of up to 256 KiB; first is
// true for the first chunk, which is sent even for an empty body. It stops
// when send fails (the service ended the stream: CloseAndRecv says why)
// and returns the body's read error, if any.
func streamBody(r *http.Request, send func(chunk []byte, first bool) error) error {
	buf := make([]byte, 256<<10)
	for first := true; ; first = false {
		n, rerr := r.Body.Read(buf)
		if n > 0 || first {
			if err := send(append([]byte(nil), buf[:n]...), first); err != nil {
				return nil
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// bodyReadFailed answers an upload whose body could not be read whole.
func (h *handler) bodyReadFailed(w http.ResponseWriter, r *http.Request, err error) {
	if bodyTooLarge(r) {
		writeError(w, ErrorDetail{Code: ReasonRequestTooLarge, HTTPStatus: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("the file is larger than %d bytes", h.cfg.MaxImportBytes)})
		return
	}
	writeError(w, ErrorDetail{Code: ReasonInvalidArgument, HTTPStatus: http.StatusBadRequest, Message: "cannot read the body: " + err.Error()})
}
