package stream_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-network/portal/stream"
	"github.com/kinesis-network/portal/stream/streamtest"
)

const (
	testAccessKey = streamtest.AccessKeyID
	testSecretKey = streamtest.SecretAccessKey
)

// startServer runs a Server for cfg on a real listener speaking HTTP/1.1 and h2c, and returns it with
// its base URL.
func startServer(t *testing.T, cfg stream.Config) (*stream.Server, string) {
	t.Helper()
	srv, err := stream.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.Protocols = new(http.Protocols)
	hs.Config.Protocols.SetHTTP1(true)
	hs.Config.Protocols.SetUnencryptedHTTP2(true)
	hs.Start()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
	})
	return srv, hs.URL
}

// quietConfig is a Config without control-plane limits, as most tests want.
func quietConfig() stream.Config {
	return stream.Config{DisableControlPlaneLimits: true}
}

type clientOpt func(*kinesis.Options)

func noRetries(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

func withHTTPClient(c *http.Client) clientOpt {
	return func(o *kinesis.Options) { o.HTTPClient = c }
}

// newClient is an unmodified SDK client pointed at url.
func newClient(url string, opts ...clientOpt) *kinesis.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
		for _, f := range opts {
			f(o)
		}
	})
}

// rawPost sends body to url with the given target operation and content type, unsigned.
func rawPost(t *testing.T, url, op, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if op != "" {
		req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// The SDK helpers are shared with the scenario suite.
var (
	ctxT         = streamtest.Context
	wantAPIError = streamtest.WantAPIError
	createStream = streamtest.CreateStream
	readShard    = streamtest.ReadShard
)
