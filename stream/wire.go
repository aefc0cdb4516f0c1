package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// This file holds the request and response shapes of the Kinesis_20131202 API. The same structs are
// decoded from and encoded to JSON 1.1 and CBOR 1.1: fxamacker/cbor falls back to the json struct tags,
// blobs ([]byte) are base64 strings in JSON and byte strings in CBOR, timestamps are epochTime.

// epochTime is a timestamp on the wire: epoch seconds (a JSON number with millisecond precision) in
// JSON, and CBOR tag 1 holding epoch milliseconds in CBOR, as the AWS CBOR clients (the Java SDKs) write
// and read it. Decoding CBOR accepts tag 1 or a bare number, integer or float, in seconds or
// milliseconds (values above 10^11 are taken as milliseconds).
type epochTime struct{ time.Time }

func newEpochTime(t time.Time) *epochTime { return &epochTime{t} }

// MarshalJSON implements json.Marshaler.
func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *epochTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if tt, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = tt
			return nil
		}
		b = []byte(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("timestamp %s: not a number of epoch seconds", b)
	}
	t.Time = fromEpoch(f, false)
	return nil
}

// MarshalCBOR implements cbor.Marshaler.
func (t epochTime) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: t.UnixMilli()})
}

// UnmarshalCBOR implements cbor.Unmarshaler.
func (t *epochTime) UnmarshalCBOR(b []byte) error {
	data := b
	var rt cbor.RawTag
	if err := cbor.Unmarshal(b, &rt); err == nil {
		switch rt.Number {
		case 0:
			var s string
			if err := cbor.Unmarshal(rt.Content, &s); err != nil {
				return err
			}
			tt, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("timestamp: %w", err)
			}
			t.Time = tt
			return nil
		case 1:
			data = rt.Content
		default:
			return fmt.Errorf("timestamp: unexpected CBOR tag %d", rt.Number)
		}
	}
	var v any
	if err := cbor.Unmarshal(data, &v); err != nil {
		return err
	}
	var f float64
	switch n := v.(type) {
	case uint64:
		f = float64(n)
	case int64:
		f = float64(n)
	case float64:
		f = n
	case float32:
		f = float64(n)
	default:
		return fmt.Errorf("timestamp: unexpected CBOR value %T", v)
	}
	t.Time = fromEpoch(f, true)
	return nil
}

// fromEpoch converts epoch seconds (or milliseconds when allowMillis and f > 1e11) to a time.
func fromEpoch(f float64, allowMillis bool) time.Time {
	if allowMillis && math.Abs(f) > 1e11 {
		return time.UnixMilli(int64(f)).UTC()
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
}

// blob is a request's binary member. In JSON it is a base64 string decoded strictly, as the service
// does, with the service's SerializationException messages for anything else; in CBOR a byte string.
type blob []byte

// serializationError is a decoding failure worded for the client (a SerializationException message).
type serializationError struct{ msg string }

func (e *serializationError) Error() string { return e.msg }

// UnmarshalJSON implements json.Unmarshaler.
func (b *blob) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return &serializationError{}
	}
	switch data[0] {
	case 'n':
		return nil // null: the member is absent
	case 't', 'f':
		return &serializationError{"class java.lang.Boolean can not be converted to a Blob"}
	case '{':
		return &serializationError{"Start of structure or map found where not expected."}
	case '[':
		return &serializationError{"Start of list found where not expected"}
	case '"':
	default:
		return &serializationError{"class java.math.BigDecimal can not be converted to a Blob"}
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	fail := func(why string) error {
		return &serializationError{"'" + s + "' can not be converted to a Blob: " + why}
	}
	if len(s)%4 != 0 {
		return fail(fmt.Sprintf("Base64 encoded length is expected a multiple of 4 bytes but found: %d", len(s)))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' ||
			c == '=' && (i+1 == len(s) || s[i+1] == '=')
		if !ok {
			return fail(fmt.Sprintf("Invalid Base64 character: '%c'", c))
		}
	}
	out, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fail("Invalid last non-pad Base64 character dectected") // sic, as the service says
	}
	*b = out
	return nil
}

// streamRef names a stream by name, ARN or id; any one is enough.
type streamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
	StreamId   *string `json:"StreamId,omitempty"`
}

type streamModeDetails struct {
	StreamMode *string `json:"StreamMode,omitempty"`
}

type createStreamInput struct {
	StreamName          *string            `json:"StreamName"`
	ShardCount          *int               `json:"ShardCount"`
	StreamModeDetails   *streamModeDetails `json:"StreamModeDetails"`
	Tags                map[string]string  `json:"Tags"`
	WarmThroughputMiBps *int               `json:"WarmThroughputMiBps"`
	MaxRecordSizeInKiB  *int               `json:"MaxRecordSizeInKiB"`
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion"`
}

type listStreamsInput struct {
	Limit                    *int    `json:"Limit"`
	ExclusiveStartStreamName *string `json:"ExclusiveStartStreamName"`
	NextToken                *string `json:"NextToken"`
}

type streamSummary struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *streamModeDetails `json:"StreamModeDetails,omitempty"`
	StreamCreationTimestamp *epochTime         `json:"StreamCreationTimestamp,omitempty"`
}

type listStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []streamSummary `json:"StreamSummaries"`
}

type describeStreamInput struct {
	streamRef
	Limit                 *int    `json:"Limit"`
	ExclusiveStartShardId *string `json:"ExclusiveStartShardId"`
}

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type sequenceNumberRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

type shardOut struct {
	ShardId               string              `json:"ShardId"`
	ParentShardId         *string             `json:"ParentShardId,omitempty"`
	AdjacentParentShardId *string             `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   sequenceNumberRange `json:"SequenceNumberRange"`
}

type enhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type streamDescription struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *streamModeDetails `json:"StreamModeDetails"`
	Shards                  []shardOut         `json:"Shards"`
	HasMoreShards           bool               `json:"HasMoreShards"`
	RetentionPeriodHours    int                `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochTime          `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          string             `json:"EncryptionType"`
	KeyId                   *string            `json:"KeyId,omitempty"`
}

type describeStreamOutput struct {
	StreamDescription streamDescription `json:"StreamDescription"`
}

type warmThroughput struct {
	TargetMiBps  *int `json:"TargetMiBps,omitempty"`
	CurrentMiBps *int `json:"CurrentMiBps,omitempty"`
}

type streamDescriptionSummary struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamId                string             `json:"StreamId,omitempty"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *streamModeDetails `json:"StreamModeDetails"`
	RetentionPeriodHours    int                `json:"RetentionPeriodHours"`
	StreamCreationTimestamp epochTime          `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          string             `json:"EncryptionType"`
	KeyId                   *string            `json:"KeyId,omitempty"`
	OpenShardCount          int                `json:"OpenShardCount"`
	ConsumerCount           int                `json:"ConsumerCount"`
	WarmThroughput          *warmThroughput    `json:"WarmThroughput,omitempty"`
	MaxRecordSizeInKiB      int                `json:"MaxRecordSizeInKiB"`
}

type describeStreamSummaryOutput struct {
	StreamDescriptionSummary streamDescriptionSummary `json:"StreamDescriptionSummary"`
}

type shardFilter struct {
	Type      *string    `json:"Type"`
	ShardId   *string    `json:"ShardId"`
	Timestamp *epochTime `json:"Timestamp"`
}

type listShardsInput struct {
	streamRef
	NextToken               *string      `json:"NextToken"`
	ExclusiveStartShardId   *string      `json:"ExclusiveStartShardId"`
	MaxResults              *int         `json:"MaxResults"`
	StreamCreationTimestamp *epochTime   `json:"StreamCreationTimestamp"`
	ShardFilter             *shardFilter `json:"ShardFilter"`
}

type listShardsOutput struct {
	Shards    []shardOut `json:"Shards"`
	NextToken *string    `json:"NextToken,omitempty"`
}

type putRecordInput struct {
	streamRef
	Data                      blob    `json:"Data"`
	PartitionKey              *string `json:"PartitionKey"`
	ExplicitHashKey           *string `json:"ExplicitHashKey"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering"`
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType,omitempty"`
}

type putRecordsEntry struct {
	Data            blob    `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

type putRecordsInput struct {
	streamRef
	Records []*putRecordsEntry `json:"Records"`
}

type putRecordsResult struct {
	SequenceNumber *string `json:"SequenceNumber,omitempty"`
	ShardId        *string `json:"ShardId,omitempty"`
	ErrorCode      *string `json:"ErrorCode,omitempty"`
	ErrorMessage   *string `json:"ErrorMessage,omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int                `json:"FailedRecordCount"`
	Records           []putRecordsResult `json:"Records"`
	EncryptionType    string             `json:"EncryptionType,omitempty"`
}

type getShardIteratorInput struct {
	streamRef
	ShardId                *string    `json:"ShardId"`
	ShardIteratorType      *string    `json:"ShardIteratorType"`
	StartingSequenceNumber *string    `json:"StartingSequenceNumber"`
	Timestamp              *epochTime `json:"Timestamp"`
}

type getShardIteratorOutput struct {
	ShardIterator string `json:"ShardIterator"`
}

type getRecordsInput struct {
	ShardIterator *string `json:"ShardIterator"`
	Limit         *int    `json:"Limit"`
	StreamARN     *string `json:"StreamARN"`
}

type recordOut struct {
	SequenceNumber              string    `json:"SequenceNumber"`
	ApproximateArrivalTimestamp epochTime `json:"ApproximateArrivalTimestamp"`
	Data                        []byte    `json:"Data"`
	PartitionKey                string    `json:"PartitionKey"`
	EncryptionType              string    `json:"EncryptionType,omitempty"`
}

type childShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashKeyRange `json:"HashKeyRange"`
}

type getRecordsOutput struct {
	Records            []recordOut  `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"` // absent at the end of a closed shard
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []childShard `json:"ChildShards,omitempty"`
}

type splitShardInput struct {
	streamRef
	ShardToSplit       *string `json:"ShardToSplit"`
	NewStartingHashKey *string `json:"NewStartingHashKey"`
}

type mergeShardsInput struct {
	streamRef
	ShardToMerge         *string `json:"ShardToMerge"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge"`
}

type updateShardCountInput struct {
	streamRef
	TargetShardCount *int    `json:"TargetShardCount"`
	ScalingType      *string `json:"ScalingType"`
}

type updateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int    `json:"CurrentShardCount"`
	TargetShardCount  int    `json:"TargetShardCount"`
}

type updateStreamModeInput struct {
	streamRef
	StreamModeDetails   *streamModeDetails `json:"StreamModeDetails"`
	WarmThroughputMiBps *int               `json:"WarmThroughputMiBps"`
}

type retentionInput struct {
	streamRef
	RetentionPeriodHours *int `json:"RetentionPeriodHours"`
}

type addTagsInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

type removeTagsInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

type listTagsForStreamInput struct {
	streamRef
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey"`
	Limit                *int    `json:"Limit"`
}

type tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

type listTagsForStreamOutput struct {
	Tags        []tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

type tagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
	TagKeys     []string          `json:"TagKeys"`
}

type listTagsForResourceOutput struct {
	Tags []tag `json:"Tags"`
}

type describeLimitsOutput struct {
	ShardLimit               int `json:"ShardLimit"`
	OpenShardCount           int `json:"OpenShardCount"`
	OnDemandStreamCount      int `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int `json:"OnDemandStreamCountLimit"`
}

type consumerInput struct {
	StreamARN    *string           `json:"StreamARN"`
	ConsumerName *string           `json:"ConsumerName"`
	ConsumerARN  *string           `json:"ConsumerARN"`
	Tags         map[string]string `json:"Tags"`
}

type consumerOut struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp epochTime `json:"ConsumerCreationTimestamp"`
	StreamARN                 string    `json:"StreamARN,omitempty"`
}

type registerConsumerOutput struct {
	Consumer consumerOut `json:"Consumer"`
}

type describeConsumerOutput struct {
	ConsumerDescription consumerOut `json:"ConsumerDescription"`
}

type listConsumersInput struct {
	StreamARN               *string    `json:"StreamARN"`
	NextToken               *string    `json:"NextToken"`
	MaxResults              *int       `json:"MaxResults"`
	StreamCreationTimestamp *epochTime `json:"StreamCreationTimestamp"`
}

type listConsumersOutput struct {
	Consumers []consumerOut `json:"Consumers"`
	NextToken *string       `json:"NextToken,omitempty"`
}

type startingPosition struct {
	Type           *string    `json:"Type"`
	SequenceNumber *string    `json:"SequenceNumber"`
	Timestamp      *epochTime `json:"Timestamp"`
}

type subscribeInput struct {
	ConsumerARN      *string           `json:"ConsumerARN"`
	ShardId          *string           `json:"ShardId"`
	StartingPosition *startingPosition `json:"StartingPosition"`
}

type subscribeEvent struct {
	Records                    []recordOut  `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []childShard `json:"ChildShards,omitempty"`
}

type encryptionInput struct {
	streamRef
	EncryptionType *string `json:"EncryptionType"`
	KeyId          *string `json:"KeyId"`
}

type monitoringInput struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type monitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

type warmThroughputInput struct {
	streamRef
	WarmThroughputMiBps *int `json:"WarmThroughputMiBps"`
}

type warmThroughputOutput struct {
	StreamName     string         `json:"StreamName"`
	StreamARN      string         `json:"StreamARN"`
	WarmThroughput warmThroughput `json:"WarmThroughput"`
}

type maxRecordSizeInput struct {
	streamRef
	MaxRecordSizeInKiB *int `json:"MaxRecordSizeInKiB"`
}

type resourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN"`
	Policy      *string `json:"Policy"`
}

type getResourcePolicyOutput struct {
	Policy string `json:"Policy"`
}

type empty struct{}
