package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/kinesis-network/portal/api/apitype"
)

// readBody returns the request body, at most MaxBodyBytes long. A Content-Type, when present, must be
// JSON (415 otherwise). An empty body is returned as nil.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &httpError{Status: http.StatusUnsupportedMediaType, Code: apitype.CodeMediaType,
				Message: fmt.Sprintf("Content-Type %q is not supported: send application/json", ct)}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &httpError{Status: http.StatusRequestEntityTooLarge, Code: apitype.CodeTooLarge,
			Message: fmt.Sprintf("request body is larger than %d bytes", h.cfg.MaxBodyBytes)}
	}
	if err != nil {
		return nil, &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "could not read the request body"}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return b, nil
}

// decode reads the body into dst, strictly: unknown fields, trailing data and wrong types are 400 errors
// that name the field. An empty body is an error unless allowEmpty (dst is then left as is).
func (h *handler) decode(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	b, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	if b == nil {
		if allowEmpty {
			return nil
		}
		return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "request body is empty: send a JSON object"}
	}
	return decodeStrict(b, dst)
}

// decodeStrict decodes one JSON value from b into dst, rejecting unknown fields and trailing data.
func decodeStrict(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "malformed JSON: unexpected data after the JSON object"}
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 that names the field where it can.
func jsonError(err error) *httpError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "malformed JSON: unexpected end of input"}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
				Message: fmt.Sprintf("request body must be a JSON object, not %s", typ.Value)}
		}
		return invalid(typ.Field, "must be %s, not %s", describeType(typ.Type), typ.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name := strings.Trim(f, `"`)
		return invalid(name, "unknown field %s", f)
	}
	return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
		Message: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// describeType names a Go type the way a JSON user thinks of it.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a different type"
}

// decodePatch parses a PATCH body: a JSON object, numbers kept exact.
func decodePatch(b []byte) (map[string]any, error) {
	if b == nil {
		return nil, &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "request body is empty: send a JSON object with the fields to change"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "malformed JSON: unexpected data after the JSON object"}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidJSON,
			Message: "request body must be a JSON object"}
	}
	return m, nil
}

// toMap returns v (a struct) as a generic JSON object with exact numbers.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// mergePatch applies an RFC 7396 JSON merge patch to target and returns the result: objects merge
// recursively, null removes a member, anything else (arrays included) replaces.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = mergePatch(tm[k], v)
		}
	}
	return tm
}
