// Package stream is a Kinesis Data Streams–compatible stream service.
//
// An Engine keeps streams and their shards (hash-key ranges over the 128-bit MD5 key space, split/merge
// lineage, status transitions), stores records through a storage.Backend, enforces the service's
// per-shard throughput limits with token buckets, trims records past the retention period and, for
// ON_DEMAND streams, splits hot shards and merges cold ones by itself.
//
// A Server exposes the Engine over the Kinesis wire protocol (JSON 1.1 and CBOR 1.1, with
// X-Amz-Target: Kinesis_20131202.<Operation>), verifies SigV4 signatures when credentials are
// configured and streams enhanced fan-out records for SubscribeToShard as an AWS event stream. It is an
// http.Handler, so it can be mounted in any net/http server; cmd/streamd is the standalone binary.
//
// Unmodified AWS SDKs work against a Server with nothing but an endpoint override.
package stream
