package streamtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// testSigV4: with credentials configured every request must be signed with one of them. Signed SDK
// calls pass (through a relay too: the client signed the relay's host and the full relay path, which
// the server rebuilds from X-Forwarded-Host and X-Forwarded-Prefix), a wrong secret, an unknown key
// and a missing signature get the service's errors, and presigned query authentication works.
func testSigV4(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.Credentials = map[string]string{AccessKeyID: SecretAccessKey}
	tg := h.Start(t, cfg)
	ctx := Context(t)
	good := tg.NewClient(noRetries)
	CreateStream(t, good, "signed", 1)
	for _, data := range []string{"one", "two"} {
		if _, err := good.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("signed"), PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatalf("signed PutRecord: %v", err)
		}
	}
	if recs := ReadShard(t, good, "signed", "shardId-000000000000"); len(recs) != 2 || string(recs[1].Data) != "two" {
		t.Fatalf("signed read: %d records", len(recs))
	}
	// HTTP/1.1 and HTTP/2 alike.
	for _, hc := range []*http.Client{protoChecked(t, tg.HTTP1, "HTTP/1.1"), protoChecked(t, tg.HTTP2, "HTTP/2.0")} {
		if _, err := tg.NewClient(noRetries, withHTTPClient(hc)).ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatalf("signed ListStreams: %v", err)
		}
	}

	withCreds := func(key, secret string) *kinesis.Client {
		return tg.NewClient(noRetries, func(o *kinesis.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, nil
			})
		})
	}
	_, err := withCreds(AccessKeyID, "not-the-secret").ListStreams(ctx, &kinesis.ListStreamsInput{})
	WantAPIError(t, err, "InvalidSignatureException",
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	_, err = withCreds("AKIDUNKNOWN", "x").ListStreams(ctx, &kinesis.ListStreamsInput{})
	WantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")

	post := func(u string, hdr http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		status, _, body := do(t, tg.Client, req)
		return status, string(body)
	}
	if status, body := post(tg.URL, nil); status != 400 || !strings.Contains(body, "MissingAuthenticationTokenException") {
		t.Fatalf("unsigned: %d %s", status, body)
	}

	// Presigned query authentication: the signature is in the URL, over its host and path.
	req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(tg.URL, "/")+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	signed, hdr, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}, req,
		"UNSIGNED-PAYLOAD", "kinesis", Region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(signed, hdr.Clone()); status != 200 || !strings.Contains(body, `"signed"`) {
		t.Fatalf("presigned request: %d %s", status, body)
	}
}
