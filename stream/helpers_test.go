package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantAPIError asserts err is a service error of type code whose message contains msg.
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s error, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want error code %s, got %s (%s)", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	if !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("want %s message containing %q, got %q", code, msg, ae.ErrorMessage())
	}
}

func createStream(t *testing.T, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	_, err := c.CreateStream(ctxT(t), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
}

// readShard reads a shard from TRIM_HORIZON to its end (closed shard) or to the tip (open shard).
func readShard(t *testing.T, c *kinesis.Client, streamName, shardID string) []types.Record {
	t.Helper()
	ctx := ctxT(t)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(streamName),
		ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("GetShardIterator %s: %v", shardID, err)
	}
	var out []types.Record
	iter := it.ShardIterator
	for iter != nil {
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("GetRecords %s: %v", shardID, err)
		}
		out = append(out, res.Records...)
		if len(res.Records) == 0 && res.NextShardIterator != nil {
			break // tip of an open shard
		}
		iter = res.NextShardIterator
	}
	return out
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
