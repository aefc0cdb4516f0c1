package stream_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-network/portal/stream"
)

// ExampleNewServer mounts the stream service as an http.Handler and talks to it with an unmodified AWS
// SDK client, pointed at it by nothing but an endpoint override.
func ExampleNewServer() {
	srv, err := stream.NewServer(stream.Config{}) // in memory, no signature verification
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	client := kinesis.NewFromConfig(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("any", "any", "")},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String(hs.URL) })
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders")}); err != nil {
		panic(err)
	}
	out, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"),
		PartitionKey: aws.String("customer-42"), Data: []byte(`{"total":12}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println(*out.ShardId, len(*out.SequenceNumber))
	// Output: shardId-000000000003 56
}
