package stream

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// Stream statuses.
const (
	statusCreating = "CREATING"
	statusDeleting = "DELETING"
	statusActive   = "ACTIVE"
	statusUpdating = "UPDATING"

	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"

	metaStreamPrefix = "stream/"
	metaSecretKey    = "engine/secret"

	minRetentionHours     = 24
	maxRetentionHours     = 8760
	defaultShardCount     = 4
	defaultMaxRecordKiB   = 1024
	largestMaxRecordKiB   = 10240
	maxTargetShardCount   = 10000
	maxShardCountCreation = 10000
)

// engine holds every stream of one account and region. All methods are safe for concurrent use.
type engine struct {
	cfg        Config
	backend    storage.Backend
	ownBackend bool
	log        *slog.Logger
	now        func() time.Time
	secret     []byte

	mu      sync.RWMutex
	streams map[string]*streamState

	ctlMu sync.Mutex
	ctl   map[string]*rateLimiter

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	metrics    *metrics
	openShards atomic.Int64 // open shards over all streams, for the account shard limit
}

// streamMeta is the persisted definition of a stream; it is stored as JSON under "stream/<name>".
type streamMeta struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"`
	Created           time.Time         `json:"created"`
	Status            string            `json:"status"`
	StatusUntil       time.Time         `json:"statusUntil,omitzero"`
	RetentionHours    int               `json:"retentionHours"`
	Mode              string            `json:"mode"`
	Shards            []*shardMeta      `json:"shards"`
	NextShard         int               `json:"nextShard"`
	Tags              map[string]string `json:"tags,omitempty"`
	Consumers         []*consumerMeta   `json:"consumers,omitempty"`
	Encryption        string            `json:"encryption,omitempty"`
	KeyID             string            `json:"keyId,omitempty"`
	Metrics           []string          `json:"metrics,omitempty"`
	WarmMiBps         int               `json:"warmMiBps,omitempty"`
	MaxRecordKiB      int               `json:"maxRecordKiB"`
	Pending           *pendingOp        `json:"pending,omitempty"`
	ShardCountUpdates []time.Time       `json:"shardCountUpdates,omitempty"`
	Policy            string            `json:"policy,omitempty"`
}

// shardMeta is the persisted definition of one shard.
type shardMeta struct {
	Index     int       `json:"index"`
	Parent    int       `json:"parent"`    // -1 when none
	AdjParent int       `json:"adjParent"` // -1 when none
	Start     string    `json:"start"`
	End       string    `json:"end"`
	Created   time.Time `json:"created"`
	Closed    time.Time `json:"closed,omitzero"`
	EndIndex  uint64    `json:"endIndex,omitempty"` // storage index past the last record, once closed
}

// consumerMeta is the persisted definition of an enhanced fan-out consumer.
type consumerMeta struct {
	Name        string            `json:"name"`
	Created     time.Time         `json:"created"`
	Status      string            `json:"status"`
	StatusUntil time.Time         `json:"statusUntil,omitzero"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// pendingOp is a change that completes when a stream leaves UPDATING.
type pendingOp struct {
	Kind       string `json:"kind"` // split, merge, resize, mode, encryption, warm, maxRecord
	Shard      int    `json:"shard,omitempty"`
	Other      int    `json:"other,omitempty"`
	HashKey    string `json:"hashKey,omitempty"`
	Target     int    `json:"target,omitempty"`
	Mode       string `json:"mode,omitempty"`
	Encryption string `json:"encryption,omitempty"`
	KeyID      string `json:"keyId,omitempty"`
}

// streamState is a stream in memory. mu guards meta, shards and open; appends hold mu.RLock so that a
// reshard (mu.Lock) sees every in-flight write finished before it closes a shard.
type streamState struct {
	mu      sync.RWMutex
	meta    *streamMeta
	shards  map[int]*shardState
	open    []*shardState // open shards sorted by starting hash key
	timer   *time.Timer
	gone    bool // deleted; lookups that raced with deletion must fail
	subs    map[string]*subscription
	subsMu  sync.Mutex
	lastSub map[string]time.Time
}

// shardState is a shard in memory.
type shardState struct {
	meta       *shardMeta
	id         string
	start, end hashKey
	log        storage.Log

	appendMu    sync.Mutex // guards pending and flushing (group commit)
	pending     []*appendReq
	flushing    bool
	lastArrival time.Time // owned by the group-commit leader

	notifyMu sync.Mutex
	notify   chan struct{} // closed (and replaced) on every append and on close

	limMu      sync.Mutex
	writeBytes bucket
	writeRecs  bucket
	readCalls  bucket
	readBytes  bucket
	iterCalls  bucket

	// demand over the current auto-scaling interval, throttled attempts included
	demandBytes atomic.Int64
	demandRecs  atomic.Int64
	coldRuns    int // consecutive cold intervals, owned by the scaler
}

func newEngine(cfg Config) (*engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &engine{
		cfg:     cfg,
		backend: cfg.Backend,
		log:     cfg.Logger,
		now:     cfg.Now,
		streams: map[string]*streamState{},
		ctl:     map[string]*rateLimiter{},
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("stream: register metrics: %w", err)
	}
	e.metrics = m
	if e.backend == nil {
		e.backend = storage.NewMemory()
		e.ownBackend = true
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.loadSecret(); err != nil {
		return nil, err
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	e.start(func() { e.retentionLoop() })
	if cfg.AutoScale.Interval > 0 {
		e.start(func() { e.autoScaleLoop() })
	}
	return e, nil
}

func (e *engine) start(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// close stops the background loops and pending transitions and waits for them; it is idempotent.
func (e *engine) close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		e.mu.Lock()
		for _, st := range e.streams {
			st.mu.Lock()
			if st.timer != nil {
				st.timer.Stop()
			}
			st.mu.Unlock()
			st.closeSubscriptions()
		}
		e.mu.Unlock()
		e.wg.Wait()
		if e.ownBackend {
			e.closeErr = e.backend.Close()
		}
	})
	return e.closeErr
}

func (e *engine) loadSecret() error {
	if len(e.cfg.IteratorSecret) > 0 {
		e.secret = e.cfg.IteratorSecret
		return nil
	}
	b, err := e.backend.GetMeta(metaSecretKey)
	if err == nil && len(b) >= 16 {
		e.secret = b
		return nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("stream: load secret: %w", err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	if err := e.backend.PutMeta(metaSecretKey, b); err != nil {
		return fmt.Errorf("stream: store secret: %w", err)
	}
	e.secret = b
	return nil
}

// load rebuilds every stream from the backend's metadata, completing transitions that were pending
// when the process stopped.
func (e *engine) load() error {
	keys, err := e.backend.ListMeta(metaStreamPrefix)
	if err != nil {
		return fmt.Errorf("stream: list streams: %w", err)
	}
	for _, k := range keys {
		b, err := e.backend.GetMeta(k)
		if err != nil {
			return fmt.Errorf("stream: load %s: %w", k, err)
		}
		var m streamMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("stream: decode %s: %w", k, err)
		}
		if m.Status == statusDeleting {
			if err := e.purge(m.Name); err != nil {
				return err
			}
			continue
		}
		if !streamIDPatternRe.MatchString(m.ID) {
			m.ID = newStreamID() // ids of older versions did not follow the service's format
		}
		st := &streamState{meta: &m, shards: map[int]*shardState{}}
		for _, sm := range m.Shards {
			if err := e.attachShard(st, sm); err != nil {
				return err
			}
		}
		e.rebuildOpen(st)
		e.streams[m.Name] = st
		st.mu.Lock()
		e.finishTransition(st)
		for _, c := range m.Consumers {
			if c.Status == statusCreating {
				c.Status, c.StatusUntil = statusActive, time.Time{}
			}
		}
		m.Consumers = slicesDeleteFunc(m.Consumers, func(c *consumerMeta) bool { return c.Status == statusDeleting })
		err = e.persist(st)
		st.mu.Unlock()
		if err != nil {
			return err
		}
		e.log.Info("stream loaded", "stream", m.Name, "shards", len(st.shards), "open_shards", len(st.open))
	}
	return nil
}

func slicesDeleteFunc[T any](s []T, del func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}

// attachShard opens the log of sm and adds it to st. The caller holds st.mu (or owns st).
func (e *engine) attachShard(st *streamState, sm *shardMeta) error {
	start, ok1 := parseHashKey(sm.Start)
	end, ok2 := parseHashKey(sm.End)
	if !ok1 || !ok2 {
		return fmt.Errorf("stream: %s shard %d: bad hash range", st.meta.Name, sm.Index)
	}
	id := shardName(sm.Index)
	l, err := e.backend.OpenLog(st.meta.Name, id)
	if err != nil {
		return fmt.Errorf("stream: open log %s/%s: %w", st.meta.Name, id, err)
	}
	now := e.now()
	l1 := e.cfg.Limits
	sh := &shardState{meta: sm, id: id, start: start, end: end, log: l, notify: make(chan struct{})}
	sh.writeBytes = newBucket(float64(l1.ShardWriteBytesPerSec), float64(max(l1.ShardWriteBytesPerSec, st.meta.MaxRecordKiB*kib)), now)
	sh.writeRecs = newBucket(float64(l1.ShardWriteRecordsPerSec), float64(l1.ShardWriteRecordsPerSec), now)
	sh.readCalls = newBucket(float64(l1.ShardReadCallsPerSec), float64(l1.ShardReadCallsPerSec), now)
	sh.readBytes = newBucket(float64(l1.ShardReadBytesPerSec), float64(l1.ShardReadBytesPerSec), now)
	sh.iterCalls = newBucket(float64(l1.GetShardIteratorPerSec), float64(l1.GetShardIteratorPerSec), now)
	st.shards[sm.Index] = sh
	return nil
}

// rebuildOpen recomputes the sorted list of open shards and the engine's open shard count. The caller
// holds st.mu.
func (e *engine) rebuildOpen(st *streamState) {
	before := len(st.open)
	defer func() { e.openShards.Add(int64(len(st.open) - before)) }()
	st.open = st.open[:0]
	for _, sh := range st.shards {
		if sh.meta.Closed.IsZero() {
			st.open = append(st.open, sh)
		}
	}
	sort.Slice(st.open, func(i, j int) bool { return st.open[i].start.cmp(st.open[j].start) < 0 })
}

// shardFor returns the open shard whose range holds hk. The caller holds st.mu.
func (st *streamState) shardFor(hk hashKey) *shardState {
	i := sort.Search(len(st.open), func(i int) bool { return st.open[i].end.cmp(hk) >= 0 })
	if i == len(st.open) {
		return nil
	}
	return st.open[i]
}

// persist stores st's metadata. The caller holds st.mu for writing.
func (e *engine) persist(st *streamState) error {
	b, err := json.Marshal(st.meta)
	if err != nil {
		return fmt.Errorf("stream: encode %s: %w", st.meta.Name, err)
	}
	if err := e.backend.PutMeta(metaStreamPrefix+st.meta.Name, b); err != nil {
		return fmt.Errorf("stream: persist %s: %w", st.meta.Name, err)
	}
	return nil
}

// purge removes every trace of a stream from the backend.
func (e *engine) purge(name string) error {
	if err := e.backend.DeleteStream(name); err != nil {
		return fmt.Errorf("stream: delete %s: %w", name, err)
	}
	if err := e.backend.DeleteMeta(metaStreamPrefix + name); err != nil {
		return fmt.Errorf("stream: delete %s metadata: %w", name, err)
	}
	return nil
}

// retention returns the retention period of st as a wall-clock duration.
func (e *engine) retention(m *streamMeta) time.Duration {
	return time.Duration(m.RetentionHours) * e.cfg.RetentionHour
}

func (e *engine) notFound(name string) *APIError {
	return errNotFound("Stream %s under account %s not found.", name, e.cfg.AccountID)
}

// resolve finds the stream a request names by StreamARN, StreamName or StreamId.
func (e *engine) resolve(ref streamRef) (*streamState, *APIError) {
	name := ""
	switch {
	case ref.StreamARN != nil:
		a, ok := parseStreamARN(*ref.StreamARN)
		if !ok {
			return nil, errInvalidArg("StreamARN %s is invalid.", *ref.StreamARN)
		}
		if ref.StreamName != nil && *ref.StreamName != a.name {
			return nil, errInvalidArg("StreamARN %s and StreamName %s refer to different streams.", *ref.StreamARN, *ref.StreamName)
		}
		if a.account != e.cfg.AccountID || a.region != e.cfg.Region {
			return nil, e.notFound(a.name)
		}
		name = a.name
	case ref.StreamName != nil:
		name = *ref.StreamName
	case ref.StreamId != nil:
		e.mu.RLock()
		defer e.mu.RUnlock()
		for _, st := range e.streams {
			if st.meta.ID == *ref.StreamId {
				return st, nil
			}
		}
		return nil, errNotFound("Stream with id %s under account %s not found.", *ref.StreamId, e.cfg.AccountID)
	default:
		return nil, errInvalidArg(errStreamNameOrARNRequired)
	}
	e.mu.RLock()
	st := e.streams[name]
	e.mu.RUnlock()
	if st == nil {
		return nil, e.notFound(name)
	}
	return st, nil
}

// refName is the stream name a request names, for error messages.
func refName(ref streamRef) string {
	if ref.StreamName != nil {
		return *ref.StreamName
	}
	if ref.StreamARN != nil {
		if a, ok := parseStreamARN(*ref.StreamARN); ok {
			return a.name
		}
		return *ref.StreamARN
	}
	return ""
}

// readable reports a not-found error unless st accepts data-plane calls (ACTIVE or UPDATING).
// The caller holds st.mu.
func (e *engine) readable(st *streamState) *APIError {
	if st.gone || st.meta.Status == statusCreating || st.meta.Status == statusDeleting {
		return e.notFound(st.meta.Name)
	}
	return nil
}

// mustBeActive reports ResourceInUseException unless st is ACTIVE. The caller holds st.mu.
func (e *engine) mustBeActive(st *streamState) *APIError {
	if st.gone {
		return e.notFound(st.meta.Name)
	}
	if st.meta.Status != statusActive {
		return errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.meta.Name, e.cfg.AccountID, st.meta.Status)
	}
	return nil
}

// controlAllowed applies the call rate of a control-plane operation: per account, or per stream for
// the operations whose limit the service documents per stream (ListShards, ListStreamConsumers,
// DescribeStreamConsumer). stream returns the stream the request names ("" if none); it is called only
// for those.
func (e *engine) controlAllowed(op string, stream func() string) bool {
	if e.cfg.DisableControlPlaneLimits {
		return true
	}
	tps, ok := e.cfg.Limits.ControlPlaneTPS[op]
	if !ok {
		tps, ok = controlPlaneTPS[op]
	}
	if !ok || tps <= 0 {
		return true
	}
	key := op
	if perStreamTPS[op] {
		key = op + "\x00" + stream()
	}
	e.ctlMu.Lock()
	l := e.ctl[key]
	if l == nil {
		l = newRateLimiter(tps, e.now())
		e.ctl[key] = l
	}
	e.ctlMu.Unlock()
	return l.allow(e.now())
}

// perStreamTPS are the control-plane operations whose call rate is limited per stream.
var perStreamTPS = map[string]bool{"ListShards": true, "ListStreamConsumers": true, "DescribeStreamConsumer": true}

// rateExceeded is the LimitExceededException of a control-plane call over its rate, naming the stream
// as the service does when the request names one.
func (e *engine) rateExceeded(stream string) *APIError {
	if stream == "" {
		return errLimit(errRateExceeded)
	}
	return errLimit("Rate exceeded for stream %s under account %s.", stream, e.cfg.AccountID)
}

// controlPlaneTPS are the documented per-account transactions-per-second limits.
var controlPlaneTPS = map[string]float64{
	"AddTagsToStream": 5, "CreateStream": 5, "DecreaseStreamRetentionPeriod": 5, "DeleteStream": 5,
	"DeregisterStreamConsumer": 5, "DescribeLimits": 1, "DescribeStream": 10, "DescribeStreamConsumer": 20,
	"DescribeStreamSummary": 20, "DisableEnhancedMonitoring": 5, "EnableEnhancedMonitoring": 5,
	"IncreaseStreamRetentionPeriod": 5, "ListShards": 1000, "ListStreamConsumers": 5, "ListStreams": 5,
	"ListTagsForStream": 5, "MergeShards": 5, "RegisterStreamConsumer": 5, "RemoveTagsFromStream": 5,
	"SplitShard": 5, "StartStreamEncryption": 5, "StopStreamEncryption": 5, "UpdateShardCount": 5,
	"UpdateStreamMode": 5, "TagResource": 5, "UntagResource": 5, "ListTagsForResource": 5,
	"UpdateStreamWarmThroughput": 5, "UpdateMaxRecordSize": 5, "PutResourcePolicy": 5,
	"GetResourcePolicy": 5, "DeleteResourcePolicy": 5, "DescribeAccountSettings": 5, "UpdateAccountSettings": 5,
}

// scheduleTransition arms st's timer to complete its pending transition at StatusUntil. The caller holds
// st.mu for writing.
func (e *engine) scheduleTransition(st *streamState) {
	if st.timer != nil {
		st.timer.Stop()
	}
	d := st.meta.StatusUntil.Sub(e.now())
	if d < 0 {
		d = 0
	}
	st.timer = time.AfterFunc(d, func() {
		if e.ctx.Err() != nil {
			return
		}
		st.mu.RLock()
		deleting := st.meta.Status == statusDeleting
		st.mu.RUnlock()
		if deleting {
			e.finishDelete(st)
			return
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.gone {
			return
		}
		e.finishTransition(st)
		if err := e.persist(st); err != nil {
			e.log.Error("stream transition", "stream", st.meta.Name, "err", err)
		}
	})
}

// finishTransition completes CREATING or UPDATING (applying the pending change). The caller holds
// st.mu for writing and persists afterwards.
func (e *engine) finishTransition(st *streamState) {
	m := st.meta
	switch m.Status {
	case statusCreating:
		m.Status = statusActive
	case statusUpdating:
		if m.Pending != nil {
			if err := e.applyPending(st, m.Pending); err != nil {
				e.log.Error("stream update failed", "stream", m.Name, "op", m.Pending.Kind, "err", err)
			}
		}
		m.Pending = nil
		m.Status = statusActive
	}
	m.StatusUntil = time.Time{}
}

// beginUpdate applies op at once when UpdateDelay is zero, or moves st to UPDATING and applies op when
// the delay has passed. The caller holds st.mu for writing.
func (e *engine) beginUpdate(st *streamState, op *pendingOp) *APIError {
	if e.cfg.UpdateDelay <= 0 {
		if err := e.applyPending(st, op); err != nil {
			return errInternal(err)
		}
		if err := e.persist(st); err != nil {
			return errInternal(err)
		}
		return nil
	}
	st.meta.Status = statusUpdating
	st.meta.Pending = op
	st.meta.StatusUntil = e.now().Add(e.cfg.UpdateDelay)
	if err := e.persist(st); err != nil {
		return errInternal(err)
	}
	e.scheduleTransition(st)
	return nil
}

// applyPending performs a stream change. The caller holds st.mu for writing.
func (e *engine) applyPending(st *streamState, op *pendingOp) error {
	switch op.Kind {
	case "split":
		sh := st.shards[op.Shard]
		hk, ok := parseHashKey(op.HashKey)
		if sh == nil || !ok || !sh.meta.Closed.IsZero() {
			return fmt.Errorf("split of shard %d no longer possible", op.Shard)
		}
		_, _, err := e.split(st, sh, hk)
		return err
	case "merge":
		a, b := st.shards[op.Shard], st.shards[op.Other]
		if a == nil || b == nil || !a.meta.Closed.IsZero() || !b.meta.Closed.IsZero() {
			return fmt.Errorf("merge of shards %d and %d no longer possible", op.Shard, op.Other)
		}
		_, err := e.merge(st, a, b)
		return err
	case "resize":
		return e.resizeUniform(st, op.Target)
	case "mode":
		st.meta.Mode = op.Mode
		if op.Mode == modeProvisioned {
			st.meta.WarmMiBps = 0
		}
		if op.Target > 0 {
			st.meta.WarmMiBps = op.Target
			return e.ensureWarm(st)
		}
	case "encryption":
		st.meta.Encryption, st.meta.KeyID = op.Encryption, op.KeyID
	case "warm":
		st.meta.WarmMiBps = op.Target
		return e.ensureWarm(st)
	case "maxRecord":
		st.meta.MaxRecordKiB = op.Target
		for _, sh := range st.shards {
			sh.limMu.Lock()
			sh.writeBytes.capacity = float64(max(e.cfg.Limits.ShardWriteBytesPerSec, op.Target*kib))
			sh.limMu.Unlock()
		}
	}
	return nil
}

// ensureWarm grows an ON_DEMAND stream to the shard count its warm throughput needs. The caller holds
// st.mu for writing.
func (e *engine) ensureWarm(st *streamState) error {
	want := e.warmShards(st.meta)
	if len(st.open) >= want {
		return nil
	}
	return e.resizeUniform(st, want)
}

// warmShards is the fewest open shards an ON_DEMAND stream keeps.
func (e *engine) warmShards(m *streamMeta) int {
	n := e.cfg.AutoScale.MinShards
	perShard := e.cfg.Limits.ShardWriteBytesPerSec
	if w := (m.WarmMiBps*mib + perShard - 1) / perShard; w > n {
		n = w
	}
	return n
}

// finishDelete removes a DELETING stream.
func (e *engine) finishDelete(st *streamState) {
	e.mu.Lock()
	st.mu.Lock()
	if e.streams[st.meta.Name] == st {
		delete(e.streams, st.meta.Name)
	}
	if !st.gone {
		e.openShards.Add(-int64(len(st.open)))
	}
	st.gone = true
	name := st.meta.Name
	st.mu.Unlock()
	e.mu.Unlock()
	st.closeSubscriptions()
	if err := e.purge(name); err != nil {
		e.log.Error("stream delete", "stream", name, "err", err)
	}
}

// openShardCount is the number of open shards over all streams.
func (e *engine) openShardCount() int { return int(e.openShards.Load()) }

func (e *engine) shardLimitErr(current, additional int) *APIError {
	return errLimit("This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html) for current limits and how to request higher limits.",
		e.cfg.AccountID, e.cfg.Region, current, e.cfg.Limits.ShardLimit, additional)
}

// sortedStreamNames lists stream names in order.
func (e *engine) sortedStreamNames() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	names := make([]string, 0, len(e.streams))
	for n := range e.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newStreamID returns a stream id in the service's format: 20 and 3 lowercase letters or digits
// joined by a hyphen ([a-z0-9]{20}-[a-z0-9]{3}).
func newStreamID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i == 20 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}
