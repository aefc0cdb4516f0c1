package stream

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"0", "340282366920938463463374607431768211455", "340282366920938463463374607431768211456", "-1", "01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parseHashKey(s)
		if !ok {
			return
		}
		if back, ok := parseHashKey(h.String()); !ok || back != h {
			t.Fatalf("%q -> %v -> %q does not round-trip", s, h, h.String())
		}
	})
}

func FuzzDecodeIterator(f *testing.F) {
	e := &engine{secret: []byte("0123456789abcdef0123456789abcdef")}
	f.Add(e.encodeIterator(iteratorToken{stream: "s", created: 42, shard: 3, pos: 7, issued: time.UnixMilli(1700000000000)}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		it, err := e.decodeIterator(s)
		if err != nil {
			return
		}
		// Only tokens this engine signed decode, and they re-encode to themselves.
		if again := e.encodeIterator(it); again != s {
			t.Fatalf("forged or ambiguous token %q decoded to %+v", s, it)
		}
	})
}

func FuzzEpochTimeCBOR(f *testing.F) {
	for _, v := range []any{cbor.Tag{Number: 1, Content: int64(1700000000123)}, cbor.Tag{Number: 1, Content: 1.7e9}, uint64(1700000000), "x",
		cbor.Tag{Number: 0, Content: "2024-01-02T03:04:05Z"}} {
		b, _ := cbor.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var et epochTime
		_ = et.UnmarshalCBOR(b)
		_ = et.UnmarshalJSON(b)
	})
}

// FuzzServeHTTP sends arbitrary bodies to the handler in both encodings: it must answer every request
// with a well-formed status and never panic.
func FuzzServeHTTP(f *testing.F) {
	srv, err := NewServer(Config{DisableControlPlaneLimits: true})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	pre := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(`{"StreamName":"f","ShardCount":2}`)))
	req.Header.Set("Content-Type", ContentTypeJSON)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.CreateStream")
	srv.ServeHTTP(pre, req)
	ops := []string{"PutRecord", "PutRecords", "GetShardIterator", "GetRecords", "ListShards", "SplitShard", "MergeShards",
		"DescribeStream", "UpdateShardCount", "AddTagsToStream", "ListStreams", "RegisterStreamConsumer", "SubscribeToShard"}
	f.Add(uint8(0), false, []byte(`{"StreamName":"f","PartitionKey":"k","Data":"AAEC"}`))
	f.Add(uint8(1), false, []byte(`{"StreamName":"f","Records":[{"PartitionKey":"k","Data":"AAEC","ExplicitHashKey":"7"}]}`))
	f.Add(uint8(2), false, []byte(`{"StreamName":"f","ShardId":"1","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5e9}`))
	f.Add(uint8(4), false, []byte(`{"StreamName":"f","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1}}`))
	f.Add(uint8(5), false, []byte(`{"StreamName":"f","ShardToSplit":"shardId-0","NewStartingHashKey":"99"}`))
	cb, _ := cbor.Marshal(map[string]any{"StreamName": "f", "PartitionKey": "k", "Data": []byte{1}})
	f.Add(uint8(0), true, cb)
	f.Fuzz(func(t *testing.T, op uint8, useCBOR bool, body []byte) {
		ct := ContentTypeJSON
		if useCBOR {
			ct = ContentTypeCBOR
		}
		name := ops[int(op)%len(ops)]
		if name == "SubscribeToShard" {
			return // streams for minutes when it succeeds
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("X-Amz-Target", "Kinesis_20131202."+name)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 && rec.Code != 500 {
			t.Fatalf("%s: status %d", name, rec.Code)
		}
		if rec.Code != 200 && rec.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatalf("%s: error without x-amzn-ErrorType: %s", name, rec.Body)
		}
	})
}
