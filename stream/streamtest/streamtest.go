// Package streamtest is a suite of scenarios that drive the stream service with the unmodified AWS SDK
// for Go v2 (service/kinesis), pointed at it by nothing but an endpoint override.
//
// The suite does not care how a server is reached: package stream runs it against servers on a
// loopback listener (HTTP/1.1 with h2c, and TLS with HTTP/2), and the e2e tests run the very same
// scenarios through a portal HTTPS relay URL. A Harness says how to start a server for a scenario and
// how clients reach it; Run does the rest.
//
// Every scenario starts its own server with the stream.Config it needs (a fake clock for throttling,
// short lifecycle delays, a short retention hour, SigV4 credentials, ...), so scenarios are
// independent and run in parallel.
package streamtest

import (
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-network/portal/stream"
)

// The credentials every client of the suite signs with. The SigV4 scenario configures its server to
// accept exactly these; the other scenarios leave verification off.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	// Region is the region clients sign for, the stream service's default region.
	Region = "us-east-1"
)

// Harness tells the suite how to run a stream server.
type Harness struct {
	// Start builds a stream.Server from cfg (exactly as given: the suite sets every knob it relies on),
	// serves it until t ends, closing it then, and returns how clients reach it. It must fail t rather
	// than return when it cannot, and must be safe to call from parallel tests.
	Start func(t *testing.T, cfg stream.Config) Target
}

// Target is how clients reach one started server.
type Target struct {
	// URL is the SDK's BaseEndpoint: "http://127.0.0.1:PORT", or a relay URL
	// "https://HOST:PORT/relay/<key>/".
	URL string
	// Client is the HTTP client of ordinary calls, as an SDK user would configure it. Nil means the
	// SDK's default client.
	Client *http.Client
	// HTTP1 speaks HTTP/1.1 only to URL; enhanced fan-out then runs as a chunked response.
	HTTP1 *http.Client
	// HTTP2 speaks HTTP/2 only to URL: h2c with prior knowledge for http URLs, h2 over TLS for https.
	HTTP2 *http.Client
}

// NewClient returns an SDK client for the target: region us-east-1, the suite's static credentials,
// BaseEndpoint set to tg.URL and Client as its HTTP client. opts run next and may replace any of it.
// Whatever HTTP client results is wrapped in a workaround for an SDK race on HTTP/1.1 (see
// readOnlyBodies); it changes nothing on the wire.
func (tg Target) NewClient(opts ...func(*kinesis.Options)) *kinesis.Client {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(tg.URL)
		if tg.Client != nil {
			o.HTTPClient = tg.Client
		}
		for _, f := range opts {
			f(o)
		}
		o.HTTPClient = readOnlyBodies{o.HTTPClient}
	})
}

// readOnlyBodies sends requests through an SDK HTTP client with their body reduced to Read and Close,
// working around a race between the SDK and net/http on HTTP/1.1 that closes connections under
// responses being read.
//
// smithy-go (transport/http ClientHandler, v1.28) closes the request body as soon as Do returns, and
// its body wrapper (internal/io safeWriteToReadCloser) then answers WriteTo with io.EOF instead of
// (0, nil). On HTTP/1.1 net/http's write loop, once a Content-Length body is sent, copies what is left
// of it to io.Discard (io.Copy, hence WriteTo) to detect extra bytes. When the server's answer arrives
// before that copy runs, the copy gets io.EOF, the transport takes it for a failed write and closes the
// connection: a SubscribeToShard event stream ends with "use of closed network connection", and a
// response larger than the transport's read buffer (a PutRecords answer for 40 records) fails to read,
// so the SDK retries it and writes the records twice. With WriteTo hidden, the late copy is a Read that
// reports a clean end of body. HTTP/2 reads request bodies with Read and is not affected.
type readOnlyBodies struct{ c kinesis.HTTPClient }

// Do implements kinesis.HTTPClient.
func (r readOnlyBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = readCloser{req.Body}
	}
	return r.c.Do(req)
}

type readCloser struct{ io.ReadCloser }

// scenario is one named test of the suite.
type scenario struct {
	name string
	run  func(t *testing.T, h Harness)
}

// scenarios lists the suite in the order Run starts them.
var scenarios = []scenario{
	{"StreamLifecycle", testStreamLifecycle},
	{"StatusTransitions", testStatusTransitions},
	{"PutAndReadEveryIteratorType", testPutAndReadEveryIteratorType},
	{"IteratorExpires", testIteratorExpires},
	{"RetentionTrims", testRetentionTrims},
	{"SplitMergeLineage", testSplitMergeLineage},
	{"UpdateShardCount", testUpdateShardCount},
	{"WriteThrottling", testWriteThrottling},
	{"LargeRecords", testLargeRecords},
	{"ReadThrottling", testReadThrottling},
	{"ThrottlingSwitchedOff", testThrottlingSwitchedOff},
	{"ControlPlaneRateLimit", testControlPlaneRateLimit},
	{"EnhancedFanOut", testEnhancedFanOut},
	{"EnhancedFanOutLifetime", testEnhancedFanOutLifetime},
	{"EnhancedFanOutPromptDelivery", testEnhancedFanOutPromptDelivery},
	{"SigV4", testSigV4},
	{"OnDemandScaling", testOnDemandScaling},
	{"WarmThroughputAndModes", testWarmThroughputAndModes},
}

// Run runs the suite's scenarios as parallel subtests of t, each against its own server started by
// h.Start: all of them, or only those named in only (the subtest names, such as "SigV4"), which lets a
// second transport setup rerun just the scenarios it is meant to cover.
func Run(t *testing.T, h Harness, only ...string) {
	t.Helper()
	if h.Start == nil {
		t.Fatal("streamtest: Harness.Start is nil")
	}
	want := map[string]bool{}
	for _, name := range only {
		want[name] = true
	}
	for _, sc := range scenarios {
		if len(want) > 0 && !want[sc.name] {
			continue
		}
		delete(want, sc.name)
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, h)
		})
	}
	for name := range want {
		t.Errorf("streamtest: no scenario named %q", name)
	}
}

// Names returns the names of the suite's scenarios, in the order Run starts them.
func Names() []string {
	out := make([]string, len(scenarios))
	for i, sc := range scenarios {
		out[i] = sc.name
	}
	return out
}
