// Package storage defines where the stream service keeps shard records and stream metadata, and
// provides an in-memory backend. The durable on-disk backend lives in storage/disk; a shared backend can
// be added later by implementing the same interfaces and passing the same contract tests (storagetest).
package storage

import (
	"errors"
	"io/fs"
	"time"
)

// ErrNotFound is returned when a shard log or metadata key does not exist. It wraps fs.ErrNotExist.
var ErrNotFound = errNotFound{}

type errNotFound struct{}

func (errNotFound) Error() string        { return "storage: not found" }
func (errNotFound) Is(target error) bool { return target == fs.ErrNotExist }

// ErrClosed is returned by operations on a closed Log or Backend.
var ErrClosed = errors.New("storage: closed")

// Record is one stored record of a shard. Index is assigned by the Log on Append: 0, 1, 2, ... in append
// order within the shard and never reused, even after retention trims older records.
type Record struct {
	Index           uint64
	Arrival         time.Time // approximate arrival time, set by the caller; non-decreasing within a shard
	PartitionKey    string
	ExplicitHashKey string // optional, as given by the producer
	Data            []byte
}

// Size is the record's accounted size: data plus partition key, as the service bills it.
func (r Record) Size() int { return len(r.Data) + len(r.PartitionKey) }

// Log is the append-only record log of one shard. Implementations are safe for concurrent use: Append
// calls are serialised; reads may run alongside appends and see only fully appended records.
type Log interface {
	// Append stores recs in order, assigning consecutive indexes, and returns the first index assigned.
	// When Append returns nil the records are durable according to the backend's sync policy
	// (the disk backend's default: on stable storage). recs' Index fields are ignored.
	Append(recs []Record) (first uint64, err error)
	// Read returns up to maxRecords records (and, past the first record, no more than maxBytes of
	// Record.Size) starting at index from. A from below the first retained index starts at the first
	// retained record. Reading at or past Next returns no records and no error.
	Read(from uint64, maxRecords, maxBytes int) ([]Record, error)
	// SeekTime returns the index of the first retained record whose Arrival is >= t, or Next() if none.
	SeekTime(t time.Time) (uint64, error)
	// First returns the index of the first retained record (== Next() when the log is empty).
	First() uint64
	// Next returns the index the next appended record will get.
	Next() uint64
	// Trim drops records that arrived before t. Backends may keep some older records (the disk backend
	// deletes whole segments only), but Read never returns a record below First().
	Trim(t time.Time) error
	// Close releases the log; it is idempotent.
	Close() error
}

// Backend opens shard logs and keeps small metadata blobs (stream and consumer definitions).
// Safe for concurrent use.
type Backend interface {
	// OpenLog opens (creating if needed) the log of shard shardID of stream streamKey. Opening the same
	// log twice returns the same Log or an equivalent view of it.
	OpenLog(streamKey, shardID string) (Log, error)
	// DeleteStream removes every log and the metadata of streamKey. Open logs of it become unusable.
	DeleteStream(streamKey string) error
	// PutMeta stores value under key atomically (all or nothing, durable when it returns).
	PutMeta(key string, value []byte) error
	// GetMeta returns the value stored under key or ErrNotFound.
	GetMeta(key string) ([]byte, error)
	// DeleteMeta removes key; removing a missing key is not an error.
	DeleteMeta(key string) error
	// ListMeta returns every key with the given prefix, sorted.
	ListMeta(prefix string) ([]string, error)
	// Close closes every open log; it is idempotent.
	Close() error
}
