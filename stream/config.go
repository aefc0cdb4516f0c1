package stream

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Engine and the Server in front of it. The zero value is usable: an in-memory
// backend, region us-east-1, account 000000000000, no signature verification, the service's documented
// limits, immediate status transitions.
type Config struct {
	// Backend stores records and stream metadata. Nil means a fresh storage.NewMemory(). The Engine never
	// closes a Backend it was given; it closes the one it created.
	Backend storage.Backend

	// Region is the region named in ARNs. Empty means "us-east-1".
	Region string
	// AccountID is the 12-digit account named in ARNs and error messages. Empty means "000000000000".
	AccountID string

	// Credentials maps access key ids to secret keys. When it is non-empty every request must carry a
	// valid SigV4 signature made with one of them; when empty, any signature (or none) is accepted.
	Credentials map[string]string
	// MaxClockSkew is how far X-Amz-Date may be from the server's clock when verifying signatures.
	// Zero means 15 minutes, as the service allows.
	MaxClockSkew time.Duration

	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock used for arrival times, token buckets, iterator expiry and retention. Nil means
	// time.Now. Tests inject a fake clock to make throttling deterministic.
	Now func() time.Time

	// CreateDelay is how long a new stream stays CREATING before it becomes ACTIVE. Zero means the stream
	// is ACTIVE when CreateStream returns.
	CreateDelay time.Duration
	// DeleteDelay is how long a deleted stream stays DELETING before it disappears. Zero means at once.
	DeleteDelay time.Duration
	// UpdateDelay is how long a stream stays UPDATING for resharding, mode, retention and encryption
	// changes. Zero means the change is applied before the call returns.
	UpdateDelay time.Duration
	// ConsumerDelay is how long a registered consumer stays CREATING (and a deregistered one DELETING).
	// Zero means at once.
	ConsumerDelay time.Duration

	// IteratorTTL is how long a shard iterator stays valid. Zero means 5 minutes, as the service.
	IteratorTTL time.Duration
	// NextTokenTTL is how long a ListShards/ListStreamConsumers NextToken stays valid. Zero means 300 s.
	NextTokenTTL time.Duration
	// SubscriptionDuration is how long a SubscribeToShard event stream lasts before the server ends it.
	// Zero means 5 minutes, as the service.
	SubscriptionDuration time.Duration
	// SubscribeCooldown is how soon after a successful SubscribeToShard the same consumer may subscribe
	// to the same shard again (earlier calls get ResourceInUseException). Zero means 5 seconds, as the
	// service; negative disables the check.
	SubscribeCooldown time.Duration
	// SubscriptionHeartbeat is the longest gap between two SubscribeToShard events when no records
	// arrive. Zero means 5 seconds.
	SubscriptionHeartbeat time.Duration

	// RetentionHour is the wall-clock length of one hour of RetentionPeriodHours. Zero means time.Hour.
	// Tests shrink it so that the minimum retention of 24 "hours" passes in milliseconds.
	RetentionHour time.Duration
	// RetentionCheckInterval is how often records past retention are trimmed. Zero means one minute.
	RetentionCheckInterval time.Duration

	// Limits are the service limits; zero fields take the service's defaults.
	Limits Limits
	// DisableThrottling turns off the per-shard read and write throughput limits (token buckets).
	DisableThrottling bool
	// DisableControlPlaneLimits turns off the per-account transactions-per-second limits of the control
	// plane operations (answered with LimitExceededException "Rate exceeded" when on).
	DisableControlPlaneLimits bool

	// AutoScale tunes the ON_DEMAND scaler.
	AutoScale AutoScaleConfig

	// Registerer receives the service's Prometheus metrics. Nil means no metrics.
	Registerer prometheus.Registerer

	// IteratorSecret signs shard iterators and pagination tokens. Nil means a random secret kept in the
	// Backend's metadata, so tokens survive restarts of a durable backend.
	IteratorSecret []byte
}

// Limits are the per-shard, per-request and per-account limits of the service. Each zero field means the
// documented default of Kinesis Data Streams, given in parentheses.
type Limits struct {
	// ShardWriteBytesPerSec is the write throughput of one shard in bytes/s (1 MiB).
	ShardWriteBytesPerSec int
	// ShardWriteRecordsPerSec is the write rate of one shard in records/s (1000).
	ShardWriteRecordsPerSec int
	// ShardReadBytesPerSec is the GetRecords throughput of one shard in bytes/s (2 MiB).
	ShardReadBytesPerSec int
	// ShardReadCallsPerSec is the GetRecords call rate of one shard in calls/s (5).
	ShardReadCallsPerSec int
	// GetShardIteratorPerSec is the GetShardIterator call rate of one shard in calls/s (5).
	GetShardIteratorPerSec int
	// MaxPutRecordsRecords is the most records in one PutRecords call (500).
	MaxPutRecordsRecords int
	// MaxPutRecordsBytes is the most bytes (data plus partition keys) in one PutRecords call (5 MiB).
	MaxPutRecordsBytes int
	// MaxGetRecordsRecords is the most records one GetRecords call returns (10,000).
	MaxGetRecordsRecords int
	// MaxGetRecordsBytes is the most bytes one GetRecords call returns (10 MiB).
	MaxGetRecordsBytes int
	// ShardLimit is the most open shards per account (500 in us-east-1, us-west-2 and eu-west-1, 200
	// elsewhere).
	ShardLimit int
	// OnDemandStreamCountLimit is the most ON_DEMAND streams per account (50).
	OnDemandStreamCountLimit int
	// MaxConsumersPerStream is the most enhanced fan-out consumers per stream (20).
	MaxConsumersPerStream int
	// MaxTagsPerStream is the most tags on one stream (50).
	MaxTagsPerStream int
	// UpdateShardCountPerDay is the most UpdateShardCount calls per stream per rolling 24 hours (10).
	UpdateShardCountPerDay int
	// ControlPlaneTPS overrides the per-account transactions per second of control-plane operations,
	// keyed by operation name (for example "DescribeStream": 10). Missing entries keep the service's
	// documented rates.
	ControlPlaneTPS map[string]float64
}

// AutoScaleConfig tunes how ON_DEMAND streams follow their load.
type AutoScaleConfig struct {
	// Interval is how often shard load is evaluated. Zero means 10 seconds. Negative disables scaling.
	Interval time.Duration
	// SplitThreshold is the fraction of a shard's write capacity (bytes or records) whose demand over one
	// interval, throttled attempts included, makes the shard split. Zero means 0.8.
	SplitThreshold float64
	// MergeThreshold is the fraction of write capacity below which two adjacent shards are merged when
	// their combined demand stays below it for MergeAfter intervals. Zero means 0.1.
	MergeThreshold float64
	// MergeAfter is how many consecutive cold intervals precede a merge. Zero means 30.
	MergeAfter int
	// MinShards is the fewest open shards an ON_DEMAND stream keeps (besides its warm throughput).
	// Zero means 4, the service's initial on-demand capacity of 4 MiB/s.
	MinShards int
	// MaxSplitDepth is how many times one shard may be halved in a single interval. Zero means 3
	// (a hot shard becomes up to eight).
	MaxSplitDepth int
}

const (
	kib = 1024
	mib = 1024 * 1024
)

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IteratorTTL == 0 {
		c.IteratorTTL = 5 * time.Minute
	}
	if c.NextTokenTTL == 0 {
		c.NextTokenTTL = 300 * time.Second
	}
	if c.SubscriptionDuration == 0 {
		c.SubscriptionDuration = 5 * time.Minute
	}
	if c.SubscriptionHeartbeat == 0 {
		c.SubscriptionHeartbeat = 5 * time.Second
	}
	if c.RetentionHour == 0 {
		c.RetentionHour = time.Hour
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = time.Minute
	}
	l := &c.Limits
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&l.ShardWriteBytesPerSec, 1*mib)
	def(&l.ShardWriteRecordsPerSec, 1000)
	def(&l.ShardReadBytesPerSec, 2*mib)
	def(&l.ShardReadCallsPerSec, 5)
	def(&l.GetShardIteratorPerSec, 5)
	def(&l.MaxPutRecordsRecords, 500)
	def(&l.MaxPutRecordsBytes, 5*mib)
	def(&l.MaxGetRecordsRecords, 10000)
	def(&l.MaxGetRecordsBytes, 10*mib)
	switch c.Region {
	case "us-east-1", "us-west-2", "eu-west-1":
		def(&l.ShardLimit, 500)
	default:
		def(&l.ShardLimit, 200)
	}
	def(&l.OnDemandStreamCountLimit, 50)
	def(&l.MaxConsumersPerStream, 20)
	def(&l.MaxTagsPerStream, 50)
	def(&l.UpdateShardCountPerDay, 10)
	a := &c.AutoScale
	if a.Interval == 0 {
		a.Interval = 10 * time.Second
	}
	if a.SplitThreshold == 0 {
		a.SplitThreshold = 0.8
	}
	if a.MergeThreshold == 0 {
		a.MergeThreshold = 0.1
	}
	def(&a.MergeAfter, 30)
	def(&a.MinShards, 4)
	def(&a.MaxSplitDepth, 3)
	return c
}

var (
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// validate reports the first invalid field of a defaulted config.
func (c Config) validate() error {
	if !accountRe.MatchString(c.AccountID) {
		return fmt.Errorf("stream: config AccountID %q: must be 12 digits", c.AccountID)
	}
	if !regionRe.MatchString(c.Region) {
		return fmt.Errorf("stream: config Region %q: not a region name", c.Region)
	}
	for k, v := range c.Credentials {
		if k == "" || v == "" {
			return fmt.Errorf("stream: config Credentials: empty access key or secret")
		}
	}
	for name, d := range map[string]time.Duration{
		"CreateDelay": c.CreateDelay, "DeleteDelay": c.DeleteDelay, "UpdateDelay": c.UpdateDelay,
		"ConsumerDelay": c.ConsumerDelay, "IteratorTTL": c.IteratorTTL, "RetentionHour": c.RetentionHour,
		"SubscriptionDuration": c.SubscriptionDuration, "RetentionCheckInterval": c.RetentionCheckInterval,
	} {
		if d < 0 {
			return fmt.Errorf("stream: config %s: negative duration %s", name, d)
		}
	}
	l := c.Limits
	for name, v := range map[string]int{
		"ShardWriteBytesPerSec": l.ShardWriteBytesPerSec, "ShardWriteRecordsPerSec": l.ShardWriteRecordsPerSec,
		"ShardReadBytesPerSec": l.ShardReadBytesPerSec, "ShardReadCallsPerSec": l.ShardReadCallsPerSec,
		"GetShardIteratorPerSec": l.GetShardIteratorPerSec, "MaxPutRecordsRecords": l.MaxPutRecordsRecords,
		"MaxPutRecordsBytes": l.MaxPutRecordsBytes, "MaxGetRecordsRecords": l.MaxGetRecordsRecords,
		"MaxGetRecordsBytes": l.MaxGetRecordsBytes, "ShardLimit": l.ShardLimit,
		"OnDemandStreamCountLimit": l.OnDemandStreamCountLimit, "MaxConsumersPerStream": l.MaxConsumersPerStream,
		"MaxTagsPerStream": l.MaxTagsPerStream, "UpdateShardCountPerDay": l.UpdateShardCountPerDay,
	} {
		if v < 0 {
			return fmt.Errorf("stream: config Limits.%s: negative value %d", name, v)
		}
	}
	if c.AutoScale.SplitThreshold < 0 || c.AutoScale.MergeThreshold < 0 ||
		c.AutoScale.MergeThreshold >= c.AutoScale.SplitThreshold/2 {
		return fmt.Errorf("stream: config AutoScale: MergeThreshold must be below half of SplitThreshold")
	}
	return nil
}
