package stream

import (
	"sync"
	"time"
)

// bucket is a token bucket driven by an injected clock. It is written here rather than taken from
// golang.org/x/time/rate because reads need "debt" semantics: a GetRecords call is admitted while any
// token is left and then charged the full size of its answer (up to 10 MiB against a 2 MiB/s rate),
// which x/time/rate cannot express for amounts above its burst. Not safe for concurrent use; the owner
// locks.
type bucket struct {
	rate     float64 // tokens per second
	capacity float64
	tokens   float64
	last     time.Time
}

func newBucket(rate, capacity float64, now time.Time) bucket {
	return bucket{rate: rate, capacity: capacity, tokens: capacity, last: now}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.capacity {
			b.tokens = b.capacity
		}
		b.last = now
	}
}

// has reports whether n tokens are available at now.
func (b *bucket) has(now time.Time, n float64) bool {
	b.refill(now)
	return b.tokens >= n
}

// take removes n tokens; the caller checked has.
func (b *bucket) take(n float64) { b.tokens -= n }

// positive reports whether the bucket is out of debt at now.
func (b *bucket) positive(now time.Time) bool {
	b.refill(now)
	return b.tokens > 0
}

// rateLimiter is a concurrency-safe bucket for call rates.
type rateLimiter struct {
	mu sync.Mutex
	b  bucket
}

func newRateLimiter(perSec float64, now time.Time) *rateLimiter {
	burst := perSec
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{b: newBucket(perSec, burst, now)}
}

// allow takes one token if available.
func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.b.has(now, 1) {
		return false
	}
	l.b.take(1)
	return true
}
