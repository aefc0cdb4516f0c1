package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// httpError is an error with the status, code and message the client sees. Handlers return it; fail
// writes it. Any other error becomes a 5xx whose cause is logged, never sent.
type httpError struct {
	Status  int
	Code    string
	Field   string
	Message string
}

func (e *httpError) Error() string { return e.Message }

// errInternal is what a client sees for an unexpected failure.
var errInternal = &httpError{Status: http.StatusInternalServerError, Code: apitype.CodeInternal,
	Message: "internal error; the portal logged the cause"}

// invalid returns a 400 naming field; the message is "field: detail".
func invalid(field, format string, args ...any) *httpError {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidArgument, Field: field, Message: msg}
}

func notFound(format string, args ...any) *httpError {
	return &httpError{Status: http.StatusNotFound, Code: apitype.CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *httpError {
	return &httpError{Status: http.StatusConflict, Code: apitype.CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// storeError turns a registry error into the httpError a client sees. notFoundMsg and conflictMsg are
// the messages for ErrNotFound and ErrConflict; an httpError (returned by an UpdateEndpoint callback)
// passes through.
func storeError(err error, notFoundMsg, conflictMsg string) error {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, registry.ErrNotFound):
		return notFound("%s", notFoundMsg)
	case errors.Is(err, registry.ErrConflict):
		return conflict("%s", conflictMsg)
	}
	return err
}

// fail writes err as a JSON error response. Errors that are not an httpError are mapped: registry
// unavailability and port exhaustion to 503, everything else to 500; their text is logged only.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		infoOf(r).cause = err
		switch {
		case errors.Is(err, registry.ErrNoPorts):
			w.Header().Set("Retry-After", "60")
			he = &httpError{Status: http.StatusServiceUnavailable, Code: apitype.CodeNoFreePort,
				Message: "no free TCP port in this zone; delete unused tcp endpoints or try again later"}
		case errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
			errors.Is(err, context.Canceled):
			w.Header().Set("Retry-After", "1")
			he = &httpError{Status: http.StatusServiceUnavailable, Code: apitype.CodeUnavailable,
				Message: "the registry is unavailable; try again"}
		default:
			he = errInternal
		}
	}
	if he.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portal"`)
	}
	h.reply(w, r, he.Status, apitype.ErrorBody{Error: apitype.ErrorDetail{Code: he.Code, Message: he.Message, Field: he.Field}})
}

// reply writes v as indented JSON with status. HTML escaping is off so that url_template keeps its
// "<access-key>" readable.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		infoOf(r).cause = fmt.Errorf("api: encode response: %w", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error; the portal logged the cause"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
