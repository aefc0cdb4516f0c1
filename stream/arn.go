package stream

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var (
	streamNameRe  = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	streamARNRe   = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):([0-9]{12}):stream/([a-zA-Z0-9_.-]{1,128})$`)
	consumerARNRe = regexp.MustCompile(
		`^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):([0-9]{12}):stream/([a-zA-Z0-9_.-]{1,128})/consumer/([a-zA-Z0-9_.-]{1,128}):([0-9]+)$`)
)

const (
	streamARNPattern   = `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`
	consumerARNPattern = `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`
	streamNamePattern  = `[a-zA-Z0-9_.-]+`
)

func (e *engine) streamARN(name string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", e.cfg.Region, e.cfg.AccountID, name)
}

func (e *engine) consumerARN(stream, consumer string, created int64) string {
	return fmt.Sprintf("%s/consumer/%s:%d", e.streamARN(stream), consumer, created)
}

// parsedStreamARN is a stream ARN split into its parts.
type parsedStreamARN struct{ region, account, name string }

func parseStreamARN(arn string) (parsedStreamARN, bool) {
	m := streamARNRe.FindStringSubmatch(arn)
	if m == nil {
		return parsedStreamARN{}, false
	}
	return parsedStreamARN{m[1], m[2], m[3]}, true
}

// parsedConsumerARN is a consumer ARN split into its parts.
type parsedConsumerARN struct {
	region, account, stream, consumer string
	created                           int64
}

func parseConsumerARN(arn string) (parsedConsumerARN, bool) {
	m := consumerARNRe.FindStringSubmatch(arn)
	if m == nil {
		return parsedConsumerARN{}, false
	}
	ts, err := strconv.ParseInt(m[5], 10, 64)
	if err != nil {
		return parsedConsumerARN{}, false
	}
	return parsedConsumerARN{m[1], m[2], m[3], m[4], ts}, true
}

// shardName renders a shard index as the service's shard id.
func shardName(ix int) string { return fmt.Sprintf("shardId-%012d", ix) }

// parseShardID normalises a shard id to its index the way the service does: the part after the first
// hyphen (or the whole id when it has none) must be a decimal number up to 2^31-1, whatever precedes
// the hyphen, so "shardId-000000000001", "shardId-1", "shard-1" and "1" all name shard 1.
func parseShardID(s string) (int, bool) {
	if _, rest, ok := strings.Cut(s, "-"); ok {
		s = rest
	}
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return 0, true
	}
	if len(s) > 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}
