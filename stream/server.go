package stream

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/eventstream"
	"github.com/fxamacker/cbor/v2"
)

// Content types of the Kinesis wire protocol.
const (
	ContentTypeJSON        = "application/x-amz-json-1.1"
	ContentTypeCBOR        = "application/x-amz-cbor-1.1"
	ContentTypeEventStream = "application/vnd.amazon.eventstream"
	targetPrefix           = "Kinesis_20131202"
	maxRequestBody         = 32 * mib
)

// Server serves the Kinesis Data Streams API over HTTP. It is an http.Handler for POST requests at any
// path (the service ignores the path), speaking JSON 1.1 and CBOR 1.1 over HTTP/1.1 and HTTP/2; mount it
// in an http.Server whose Protocols include HTTP/2 (and unencrypted HTTP/2 for h2c) so that enhanced
// fan-out clients can subscribe. Server is safe for concurrent use.
type Server struct {
	e     *engine
	creds map[string]string
	ops   map[string]handler
}

// handler runs one operation on a decoded request.
type handler func(e *engine, decode func(any) error) (any, *APIError)

// NewServer builds the engine described by cfg (loading the streams its Backend holds) and returns a
// Server in front of it. Close releases it.
func NewServer(cfg Config) (*Server, error) {
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{e: e, creds: e.cfg.Credentials, ops: operations()}, nil
}

// Close stops the background work (retention, on-demand scaling, pending transitions, subscriptions)
// and waits for it; the Backend is closed only when NewServer created it. Close is idempotent.
func (s *Server) Close() error { return s.e.close() }

// Region is the region the server names in ARNs.
func (s *Server) Region() string { return s.e.cfg.Region }

// AccountID is the account the server names in ARNs.
func (s *Server) AccountID() string { return s.e.cfg.AccountID }

func op[T any](f func(*engine, *T) (any, *APIError)) handler {
	return func(e *engine, decode func(any) error) (any, *APIError) {
		in := new(T)
		if err := decode(in); err != nil {
			return nil, serializationErr(err)
		}
		return f(e, in)
	}
}

func operations() map[string]handler {
	return map[string]handler{
		"CreateStream":          op((*engine).createStream),
		"DeleteStream":          op((*engine).deleteStream),
		"ListStreams":           op((*engine).listStreams),
		"DescribeStream":        op((*engine).describeStream),
		"DescribeStreamSummary": op((*engine).describeStreamSummary),
		"ListShards":            op((*engine).listShards),
		"PutRecord":             op((*engine).putRecord),
		"PutRecords":            op((*engine).putRecords),
		"GetShardIterator":      op((*engine).getShardIterator),
		"GetRecords":            op((*engine).getRecords),
		"SplitShard":            op((*engine).splitShard),
		"MergeShards":           op((*engine).mergeShards),
		"UpdateShardCount":      op((*engine).updateShardCount),
		"UpdateStreamMode":      op((*engine).updateStreamMode),
		"IncreaseStreamRetentionPeriod": op(func(e *engine, in *retentionInput) (any, *APIError) {
			return e.changeRetention(in, true)
		}),
		"DecreaseStreamRetentionPeriod": op(func(e *engine, in *retentionInput) (any, *APIError) {
			return e.changeRetention(in, false)
		}),
		"AddTagsToStream":      op((*engine).addTagsToStream),
		"RemoveTagsFromStream": op((*engine).removeTagsFromStream),
		"ListTagsForStream":    op((*engine).listTagsForStream),
		"TagResource":          op((*engine).tagResource),
		"UntagResource":        op((*engine).untagResource),
		"ListTagsForResource":  op((*engine).listTagsForResource),
		"DescribeLimits": op(func(e *engine, _ *empty) (any, *APIError) {
			return e.describeLimits()
		}),
		"RegisterStreamConsumer":   op((*engine).registerConsumer),
		"DescribeStreamConsumer":   op((*engine).describeConsumer),
		"DeregisterStreamConsumer": op((*engine).deregisterConsumer),
		"ListStreamConsumers":      op((*engine).listConsumers),
		"StartStreamEncryption": op(func(e *engine, in *encryptionInput) (any, *APIError) {
			return e.setEncryption(in, true)
		}),
		"StopStreamEncryption": op(func(e *engine, in *encryptionInput) (any, *APIError) {
			return e.setEncryption(in, false)
		}),
		"EnableEnhancedMonitoring": op(func(e *engine, in *monitoringInput) (any, *APIError) {
			return e.setMonitoring(in, true)
		}),
		"DisableEnhancedMonitoring": op(func(e *engine, in *monitoringInput) (any, *APIError) {
			return e.setMonitoring(in, false)
		}),
		"UpdateStreamWarmThroughput": op((*engine).updateWarmThroughput),
		"UpdateMaxRecordSize":        op((*engine).updateMaxRecordSize),
		"PutResourcePolicy": op(func(e *engine, in *resourcePolicyInput) (any, *APIError) {
			return e.resourcePolicy(in, "put")
		}),
		"GetResourcePolicy": op(func(e *engine, in *resourcePolicyInput) (any, *APIError) {
			return e.resourcePolicy(in, "get")
		}),
		"DeleteResourcePolicy": op(func(e *engine, in *resourcePolicyInput) (any, *APIError) {
			return e.resourcePolicy(in, "delete")
		}),
		"DescribeAccountSettings": op(func(e *engine, _ *empty) (any, *APIError) { return empty{}, nil }),
		"UpdateAccountSettings":   op(func(e *engine, _ *empty) (any, *APIError) { return empty{}, nil }),
		"SubscribeToShard":        nil, // streamed, see ServeHTTP
	}
}

// codec is the body format of one request and its response.
type codec struct {
	contentType string
	cbor        bool
}

// errNotObject is a JSON body that is valid JSON but not an object.
var errNotObject = errors.New("request body is not a JSON object")

func (c codec) decode(body []byte, v any) error {
	if c.cbor {
		return cbor.Unmarshal(body, v)
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] != '{' && t[0] != '[' && json.Valid(t) {
		return errNotObject // null, a string, a number: the service answers a bare SerializationException
	}
	return json.Unmarshal(body, v)
}

func (c codec) encode(v any) ([]byte, error) {
	if c.cbor {
		return cbor.Marshal(v)
	}
	return json.Marshal(v)
}

// serializationErr words a body decoding failure like the service's SerializationException.
func serializationErr(err error) *APIError {
	msg := err.Error()
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var be base64.CorruptInputError
	var sze *serializationError
	switch {
	case errors.As(err, &te):
		value, _, _ := strings.Cut(te.Value, " ") // "number 1.5"
		from := map[string]string{"string": "class java.lang.String", "number": "class java.math.BigDecimal",
			"bool": "class java.lang.Boolean"}[value]
		to := map[string]string{"int": "Integer", "string": "String", "bool": "Boolean", "slice": "List", "map": "Map",
			"struct": "Structure", "ptr": "Structure"}[te.Type.Kind().String()]
		if te.Type.Kind().String() == "ptr" {
			to = map[string]string{"int": "Integer", "string": "String", "bool": "Boolean", "struct": "Structure"}[te.Type.Elem().Kind().String()]
		}
		switch {
		case te.Value == "object":
			msg = "Start of structure or map found where not expected."
		case te.Value == "array":
			msg = "Start of list found where not expected"
		case from != "" && to != "":
			msg = from + " can not be converted to an " + to
		}
	case errors.As(err, &se), errors.Is(err, errNotObject):
		msg = "" // the service answers unparseable bodies with a bare {"__type":"SerializationException"}
	case errors.As(err, &sze):
		msg = sze.msg
	case errors.As(err, &be):
		msg = "Base64 encoded value can not be converted to a Blob: " + be.Error()
	}
	return &APIError{Type: ErrSerialization, Message: msg, Status: http.StatusBadRequest}
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("x-amzn-RequestId", newRequestID())
	if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" {
		idb := make([]byte, 72) // the service's are 72 random bytes, base64
		rand.Read(idb)
		h.Set("x-amz-id-2", base64.StdEncoding.EncodeToString(idb))
	}
	if r.Header.Get("Origin") != "" {
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			if v := r.Header.Get("Access-Control-Request-Headers"); v != "" {
				h.Set("Access-Control-Allow-Headers", v)
			}
			if v := r.Header.Get("Access-Control-Request-Method"); v != "" {
				h.Set("Access-Control-Allow-Methods", v)
			}
			h.Set("Access-Control-Max-Age", "172800")
			w.WriteHeader(http.StatusOK)
			return
		}
		h.Set("Access-Control-Expose-Headers", "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date")
	}
	target := r.Header.Get("X-Amz-Target")
	service, opName, _ := strings.Cut(target, ".")
	if r.Method != http.MethodPost {
		writeXMLError(w, http.StatusForbidden, ErrAccessDenied, "Unable to determine service/operation name to be authorized")
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var c codec
	switch mt {
	case "application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json":
		c = codec{contentType: ContentTypeJSON}
	case ContentTypeCBOR:
		c = codec{contentType: ContentTypeCBOR, cbor: true}
	default:
		if service == "" || opName == "" {
			writeXMLError(w, http.StatusForbidden, ErrAccessDenied, "Unable to determine service/operation name to be authorized")
			return
		}
		writeXMLError(w, http.StatusNotFound, ErrUnknownOperation, "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		s.writeError(w, c, opName, &APIError{Type: ErrSerialization, Message: "failed to read request body", Status: http.StatusBadRequest})
		return
	}
	if len(body) > maxRequestBody {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	handle, known := s.ops[opName]
	if service != targetPrefix || !known {
		s.writeError(w, c, opName, &APIError{Type: ErrUnknownOperation, Status: http.StatusBadRequest})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		s.writeError(w, c, opName, &APIError{Type: ErrSerialization, Status: http.StatusBadRequest})
		return
	}
	if aerr := s.authenticate(r, body); aerr != nil {
		s.writeError(w, c, opName, aerr)
		return
	}
	if !s.e.controlAllowed(opName, func() string { return requestStream(c, body) }) {
		s.writeError(w, c, opName, s.e.rateExceeded(requestStream(c, body)))
		return
	}
	decode := func(v any) error { return c.decode(body, v) }
	if opName == "SubscribeToShard" {
		s.subscribeToShard(w, r, c, decode)
		return
	}
	out, aerr := handle(s.e, decode)
	if aerr != nil {
		s.writeError(w, c, opName, aerr)
		return
	}
	b, err := c.encode(out)
	if err != nil {
		s.writeError(w, c, opName, errInternal(err))
		return
	}
	s.e.metrics.request(opName, "ok")
	h.Set("Content-Type", c.contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// writeError answers aerr in the request's format, with the x-amzn-ErrorType header.
func (s *Server) writeError(w http.ResponseWriter, c codec, opName string, aerr *APIError) {
	s.e.metrics.request(opName, aerr.Type)
	if aerr.Status >= 500 {
		s.e.log.Error("request failed", "operation", opName, "error_type", aerr.Type)
	} else {
		s.e.log.Debug("request rejected", "operation", opName, "error_type", aerr.Type, "message", aerr.Message)
	}
	body := map[string]string{"__type": aerr.Type}
	if aerr.Message != "" {
		key := "message"
		if aerr.Type == ErrSerialization {
			key = "Message" // the service capitalises it for serialization errors
		}
		body[key] = aerr.Message
	}
	b, _ := c.encode(body)
	h := w.Header()
	h.Set("Content-Type", c.contentType)
	h.Set("x-amzn-ErrorType", aerr.Type)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(aerr.Status)
	w.Write(b)
}

func writeXMLError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("x-amzn-ErrorType", typ)
	if msg == "" {
		w.WriteHeader(status)
		fmt.Fprintf(w, "<%s/>\n", typ)
		return
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "<%s>\n  <Message>%s</Message>\n</%s>\n", typ, msg, typ)
}

// subscribeToShard answers SubscribeToShard with an event stream: an initial-response event, then
// SubscribeToShardEvent events, each flushed as it is written, until the subscription ends.
func (s *Server) subscribeToShard(w http.ResponseWriter, r *http.Request, c codec, decode func(any) error) {
	in := new(subscribeInput)
	if err := decode(in); err != nil {
		s.writeError(w, c, "SubscribeToShard", serializationErr(err))
		return
	}
	sub, aerr := s.e.subscribe(in)
	if aerr != nil {
		s.writeError(w, c, "SubscribeToShard", aerr)
		return
	}
	defer sub.close()
	s.e.metrics.request("SubscribeToShard", "ok")
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", ContentTypeEventStream)
	w.WriteHeader(http.StatusOK)
	enc := eventstream.NewEncoder()
	payloadType := "application/json"
	if c.cbor {
		payloadType = ContentTypeCBOR
	}
	write := func(eventType string, v any) error {
		payload, err := c.encode(v)
		if err != nil {
			return err
		}
		var msg eventstream.Message
		msg.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
		msg.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(payloadType))
		msg.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
		msg.Payload = payload
		if err := enc.Encode(w, msg); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write("initial-response", empty{}); err != nil {
		return
	}
	aerr = sub.run(r.Context(), func(ev *subscribeEvent) error { return write("SubscribeToShardEvent", ev) })
	if aerr != nil {
		body := map[string]string{"message": aerr.Message}
		payload, _ := c.encode(body)
		var msg eventstream.Message
		msg.Headers.Set(eventstream.ExceptionTypeHeader, eventstream.StringValue(aerr.Type))
		msg.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(payloadType))
		msg.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.ExceptionMessageType))
		msg.Payload = payload
		if enc.Encode(w, msg) == nil {
			rc.Flush()
		}
	}
}

// requestStream is the name of the stream a request body names (by StreamName, StreamARN, or the
// stream of a ConsumerARN or ResourceARN), or "" when it names none or does not decode.
func requestStream(c codec, body []byte) string {
	var ref struct {
		StreamName  *string `json:"StreamName"`
		StreamARN   *string `json:"StreamARN"`
		ConsumerARN *string `json:"ConsumerARN"`
		ResourceARN *string `json:"ResourceARN"`
	}
	if c.decode(body, &ref) != nil {
		return ""
	}
	switch {
	case ref.StreamName != nil:
		return *ref.StreamName
	case ref.StreamARN != nil:
		if a, ok := parseStreamARN(*ref.StreamARN); ok {
			return a.name
		}
	}
	for _, arn := range []*string{ref.ConsumerARN, ref.ResourceARN} {
		if arn == nil {
			continue
		}
		if a, ok := parseConsumerARN(*arn); ok {
			return a.stream
		}
		if a, ok := parseStreamARN(*arn); ok {
			return a.name
		}
	}
	return ""
}
