package disk

import (
	"fmt"
	"log/slog"
	"time"
)

// SyncPolicy says when appended records are flushed to stable storage (fsync).
type SyncPolicy int

const (
	// SyncAlways flushes before Append returns: a record whose Append returned nil survives a crash
	// of the process or of the machine. Concurrent Appends on one shard share one flush (group
	// commit). Records become visible to readers only once flushed. This is the default.
	SyncAlways SyncPolicy = iota
	// SyncInterval flushes every Options.SyncPeriod. Records are visible to readers as soon as they
	// are written; a machine crash may lose the last period's records (a process crash loses none).
	SyncInterval
	// SyncNever leaves flushing to the operating system, except when a segment is sealed and when
	// a log is closed. A machine crash may lose any unflushed records.
	SyncNever
)

// String returns the policy's name.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Options configures a Backend. The zero value is a good default: every acknowledged record is on
// stable storage, 64 MiB segments rolled at least hourly, no logging.
type Options struct {
	// Sync is when appended records are flushed to stable storage. Zero: SyncAlways.
	Sync SyncPolicy
	// SyncPeriod is how often SyncInterval flushes logs with unflushed records. Zero: 1 second.
	// Ignored by the other policies.
	SyncPeriod time.Duration
	// SegmentBytes is the size in bytes at which a shard's active segment file is sealed and a new
	// one started. One Append's records always go to one segment, so a segment may exceed it by up
	// to one Append. Retention deletes whole segments, so it is also the granularity of trimming.
	// Zero: 64 MiB.
	SegmentBytes int64
	// SegmentDuration seals the active segment when the first record of an Append arrived this
	// long (by Record.Arrival) after the segment's first record, so that retention can delete old
	// records of a slow shard within about SegmentDuration of their expiry. Zero: 1 hour;
	// negative: segments are sealed by size only.
	SegmentDuration time.Duration
	// Logger receives warnings about data recovered from a crash or corruption and about failed
	// background flushes. Nil: nothing is logged.
	Logger *slog.Logger
}

const (
	defaultSyncPeriod      = time.Second
	defaultSegmentBytes    = 64 << 20
	defaultSegmentDuration = time.Hour
)

// withDefaults validates o and returns it with zero fields replaced by their defaults.
func (o Options) withDefaults() (Options, error) {
	switch o.Sync {
	case SyncAlways, SyncInterval, SyncNever:
	default:
		return o, fmt.Errorf("disk: Options.Sync: unknown policy %d", int(o.Sync))
	}
	if o.SyncPeriod < 0 {
		return o, fmt.Errorf("disk: Options.SyncPeriod must not be negative, got %v", o.SyncPeriod)
	}
	if o.SyncPeriod == 0 {
		o.SyncPeriod = defaultSyncPeriod
	}
	if o.SegmentBytes < 0 {
		return o, fmt.Errorf("disk: Options.SegmentBytes must not be negative, got %d", o.SegmentBytes)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = defaultSegmentBytes
	}
	if o.SegmentDuration == 0 {
		o.SegmentDuration = defaultSegmentDuration
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
