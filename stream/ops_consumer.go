package stream

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

var consumerNameRe = streamNameRe

// maxCreatingConsumers is how many consumers of a stream may be CREATING at the same time.
const maxCreatingConsumers = 5

func (e *engine) consumerOut(st *streamState, c *consumerMeta, withStream bool) consumerOut {
	o := consumerOut{ConsumerName: c.Name, ConsumerARN: e.consumerARN(st.meta.Name, c.Name, c.Created.Unix()),
		ConsumerStatus: c.Status, ConsumerCreationTimestamp: epochTime{c.Created}}
	if withStream {
		o.StreamARN = e.streamARN(st.meta.Name)
	}
	return o
}

// findConsumer returns the consumer of st named name. The caller holds st.mu.
func (st *streamState) findConsumer(name string) *consumerMeta {
	for _, c := range st.meta.Consumers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (e *engine) registerConsumer(in *consumerInput) (any, *APIError) {
	var v validationErrors
	v.str("streamARN", in.StreamARN, true, 1, 2048, streamARNPatternRe, streamARNPattern)
	v.str("consumerName", in.ConsumerName, true, 1, 128, consumerNameRe, streamNamePattern)
	if in.Tags != nil {
		v.tagMap("tags", in.Tags)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(streamRef{StreamARN: in.StreamARN})
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.readable(st); aerr != nil {
		return nil, aerr
	}
	name := *in.ConsumerName
	if st.findConsumer(name) != nil {
		return nil, errInUse("Consumer %s under stream %s already exists for account %s.", name, st.meta.Name, e.cfg.AccountID)
	}
	if len(st.meta.Consumers) >= e.cfg.Limits.MaxConsumersPerStream {
		return nil, errLimit("Consumer limit of %d has been reached for stream %s under account %s.",
			e.cfg.Limits.MaxConsumersPerStream, st.meta.Name, e.cfg.AccountID)
	}
	creating := 0
	for _, c := range st.meta.Consumers {
		if c.Status == statusCreating {
			creating++
		}
	}
	if creating >= maxCreatingConsumers {
		return nil, errLimit("Cannot have more than %d consumers in CREATING state for stream %s under account %s.",
			maxCreatingConsumers, st.meta.Name, e.cfg.AccountID)
	}
	if aerr := e.checkNewTags(st.meta.Name, in.Tags, nil); aerr != nil {
		return nil, aerr
	}
	c := &consumerMeta{Name: name, Created: e.now().UTC().Truncate(time.Second), Status: statusActive, Tags: in.Tags}
	if e.cfg.ConsumerDelay > 0 {
		c.Status = statusCreating
		c.StatusUntil = e.now().Add(e.cfg.ConsumerDelay)
	}
	st.meta.Consumers = append(st.meta.Consumers, c)
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	if c.Status == statusCreating {
		e.consumerTransition(st, c)
	}
	return &registerConsumerOutput{Consumer: e.consumerOut(st, c, false)}, nil
}

// consumerTransition completes a consumer's CREATING or DELETING state when its delay has passed.
func (e *engine) consumerTransition(st *streamState, c *consumerMeta) {
	d := c.StatusUntil.Sub(e.now())
	time.AfterFunc(max(d, 0), func() {
		if e.ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.gone {
			return
		}
		switch c.Status {
		case statusCreating:
			c.Status, c.StatusUntil = statusActive, time.Time{}
		case statusDeleting:
			st.meta.Consumers = slicesDeleteFunc(st.meta.Consumers, func(x *consumerMeta) bool { return x == c })
		}
		if err := e.persist(st); err != nil {
			e.log.Error("consumer transition", "stream", st.meta.Name, "consumer", c.Name, "err", err)
		}
	})
}

// consumerFromInput resolves the consumer a Describe/Deregister call names, by ARN or by stream ARN and
// name.
func (e *engine) consumerFromInput(in *consumerInput) (*streamState, string, *APIError) {
	var v validationErrors
	v.str("streamARN", in.StreamARN, false, 1, 2048, streamARNPatternRe, streamARNPattern)
	v.str("consumerName", in.ConsumerName, false, 1, 128, consumerNameRe, streamNamePattern)
	v.str("consumerARN", in.ConsumerARN, false, 1, 2048, consumerARNPatterRe, consumerARNPattern)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	if in.ConsumerARN != nil {
		c, ok := parseConsumerARN(*in.ConsumerARN)
		if !ok || c.account != e.cfg.AccountID || c.region != e.cfg.Region {
			return nil, "", errNotFound("Consumer %s under account %s not found.", *in.ConsumerARN, e.cfg.AccountID)
		}
		// All three may be given, as long as they name the same consumer.
		if in.ConsumerName != nil && *in.ConsumerName != c.consumer {
			return nil, "", errInvalidArg("ConsumerName %s does not match the consumer of ConsumerARN %s.", *in.ConsumerName, *in.ConsumerARN)
		}
		if in.StreamARN != nil {
			if a, ok := parseStreamARN(*in.StreamARN); !ok || a.name != c.stream || a.account != c.account || a.region != c.region {
				return nil, "", errInvalidArg("StreamARN %s does not match the stream of ConsumerARN %s.", *in.StreamARN, *in.ConsumerARN)
			}
		}
		n := c.stream
		st, aerr := e.resolve(streamRef{StreamName: &n})
		if aerr != nil {
			return nil, "", aerr
		}
		st.mu.RLock()
		cm := st.findConsumer(c.consumer)
		ok = cm != nil && cm.Created.Unix() == c.created
		st.mu.RUnlock()
		if !ok {
			return nil, "", errNotFound("Consumer %s under account %s not found.", *in.ConsumerARN, e.cfg.AccountID)
		}
		return st, c.consumer, nil
	}
	if in.StreamARN == nil || in.ConsumerName == nil {
		return nil, "", errInvalidArg("Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
	}
	st, aerr := e.resolve(streamRef{StreamARN: in.StreamARN})
	if aerr != nil {
		return nil, "", aerr
	}
	st.mu.RLock()
	cm := st.findConsumer(*in.ConsumerName)
	st.mu.RUnlock()
	if cm == nil {
		return nil, "", errNotFound("Consumer %s under stream %s under account %s not found.", *in.ConsumerName, st.meta.Name, e.cfg.AccountID)
	}
	return st, *in.ConsumerName, nil
}

func (e *engine) describeConsumer(in *consumerInput) (any, *APIError) {
	st, name, aerr := e.consumerFromInput(in)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	c := st.findConsumer(name)
	if c == nil {
		return nil, errNotFound("Consumer %s under stream %s under account %s not found.", name, st.meta.Name, e.cfg.AccountID)
	}
	return &describeConsumerOutput{ConsumerDescription: e.consumerOut(st, c, true)}, nil
}

func (e *engine) deregisterConsumer(in *consumerInput) (any, *APIError) {
	st, name, aerr := e.consumerFromInput(in)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	c := st.findConsumer(name)
	if c == nil || c.Status == statusDeleting {
		st.mu.Unlock()
		return nil, errNotFound("Consumer %s under stream %s under account %s not found.", name, st.meta.Name, e.cfg.AccountID)
	}
	if e.cfg.ConsumerDelay > 0 {
		c.Status = statusDeleting
		c.StatusUntil = e.now().Add(e.cfg.ConsumerDelay)
		e.consumerTransition(st, c)
	} else {
		st.meta.Consumers = slicesDeleteFunc(st.meta.Consumers, func(x *consumerMeta) bool { return x == c })
	}
	err := e.persist(st)
	st.mu.Unlock()
	if err != nil {
		return nil, errInternal(err)
	}
	st.closeSubscriptionsOf(name)
	return empty{}, nil
}

func (e *engine) listConsumers(in *listConsumersInput) (any, *APIError) {
	var v validationErrors
	v.str("streamARN", in.StreamARN, true, 1, 2048, streamARNPatternRe, streamARNPattern)
	v.str("nextToken", in.NextToken, false, 1, 1048576, nil, "")
	v.integer("maxResults", in.MaxResults, false, 1, 10000)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(streamRef{StreamARN: in.StreamARN})
	if aerr != nil {
		return nil, aerr
	}
	limit := 100 // the default, and the most one call returns
	if in.MaxResults != nil && *in.MaxResults < limit {
		limit = *in.MaxResults
	}
	if in.NextToken != nil && in.StreamCreationTimestamp != nil {
		return nil, errInvalidArg("NextToken and StreamCreationTimestamp cannot be provided together.")
	}
	after := ""
	st.mu.RLock()
	defer st.mu.RUnlock()
	if ts := in.StreamCreationTimestamp; ts != nil && !ts.Equal(st.meta.Created.Truncate(time.Millisecond)) &&
		ts.Unix() != st.meta.Created.Unix() {
		return nil, e.notFound(st.meta.Name) // another stream of the same name
	}
	if in.NextToken != nil {
		p, err := e.decodePage(tokenListConsumers, *in.NextToken)
		if err != nil || p.stream != st.meta.Name {
			return nil, errInvalidArg("Invalid NextToken.")
		}
		if e.now().Sub(p.issued) > e.cfg.NextTokenTTL {
			return nil, apiErr(ErrExpiredNextToken, http.StatusBadRequest, "The nextToken has expired.")
		}
		after = p.after
	}
	cs := append([]*consumerMeta(nil), st.meta.Consumers...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := &listConsumersOutput{Consumers: []consumerOut{}}
	for _, c := range cs {
		if after != "" && c.Name <= after {
			continue
		}
		if len(out.Consumers) == limit {
			tok := e.encodePage(tokenListConsumers, pageToken{stream: st.meta.Name, after: out.Consumers[len(out.Consumers)-1].ConsumerName, issued: e.now()})
			out.NextToken = &tok
			break
		}
		out.Consumers = append(out.Consumers, e.consumerOut(st, c, false))
	}
	return out, nil
}

// subscription is one SubscribeToShard event stream.
type subscription struct {
	e        *engine
	st       *streamState
	sh       *shardState
	consumer string
	key      string
	pos      uint64
	ctx      context.Context
	cancel   context.CancelFunc
}

// subscribe validates a SubscribeToShard call and registers the subscription; the caller runs it and
// must call close.
func (e *engine) subscribe(in *subscribeInput) (*subscription, *APIError) {
	var v validationErrors
	v.str("consumerARN", in.ConsumerARN, true, 1, 2048, consumerARNPatterRe, consumerARNPattern)
	v.str("shardId", in.ShardId, true, 1, 128, shardIDPatternRe, shardIDPattern)
	v.notNull("startingPosition", in.StartingPosition != nil)
	if in.StartingPosition != nil {
		v.enum("startingPosition.type", in.StartingPosition.Type, true, iteratorTypes...)
		v.str("startingPosition.sequenceNumber", in.StartingPosition.SequenceNumber, false, 0, 0, seqNumPatternRe, seqNumPattern)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c, ok := parseConsumerARN(*in.ConsumerARN)
	if !ok || c.account != e.cfg.AccountID || c.region != e.cfg.Region {
		return nil, errNotFound("Consumer %s under account %s not found.", *in.ConsumerARN, e.cfg.AccountID)
	}
	n := c.stream
	st, aerr := e.resolve(streamRef{StreamName: &n})
	if aerr != nil {
		return nil, aerr
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if aerr := e.readable(st); aerr != nil {
		return nil, aerr
	}
	cm := st.findConsumer(c.consumer)
	if cm == nil || cm.Created.Unix() != c.created {
		return nil, errNotFound("Consumer %s under account %s not found.", *in.ConsumerARN, e.cfg.AccountID)
	}
	if cm.Status != statusActive {
		return nil, errInUse("Consumer %s under account %s is not in ACTIVE state, instead in state %s.", *in.ConsumerARN, e.cfg.AccountID, cm.Status)
	}
	ix, ok := parseShardID(*in.ShardId)
	sh := st.shards[ix]
	if !ok {
		return nil, errNotFound("Could not find shard %s in stream %s under account %s.", *in.ShardId, st.meta.Name, e.cfg.AccountID)
	}
	if sh == nil {
		return nil, errNotFound("Shard %s in stream %s under account %s does not exist", shardName(ix), st.meta.Name, e.cfg.AccountID)
	}
	sp := in.StartingPosition
	pos, aerr := e.position(st, sh, *sp.Type, sp.SequenceNumber, sp.Timestamp, "SubscribeToShard")
	if aerr != nil {
		return nil, aerr
	}
	key := c.consumer + "\x00" + sh.id
	now := e.now()
	st.subsMu.Lock()
	defer st.subsMu.Unlock()
	if st.lastSub == nil {
		st.lastSub = map[string]time.Time{}
		st.subs = map[string]*subscription{}
	}
	if cool := e.cfg.SubscribeCooldown; cool >= 0 {
		if cool == 0 {
			cool = 5 * time.Second
		}
		if last, ok := st.lastSub[key]; ok && now.Sub(last) < cool {
			return nil, errInUse("Another active subscription exists for this consumer: %s", *in.ConsumerARN)
		}
	}
	if old := st.subs[key]; old != nil {
		old.cancel()
	}
	s := &subscription{e: e, st: st, sh: sh, consumer: c.consumer, key: key, pos: pos}
	s.ctx, s.cancel = context.WithCancel(e.ctx)
	st.subs[key] = s
	st.lastSub[key] = now
	return s, nil
}

// close unregisters s; it is idempotent.
func (s *subscription) close() {
	s.cancel()
	s.st.subsMu.Lock()
	if s.st.subs[s.key] == s {
		delete(s.st.subs, s.key)
	}
	s.st.subsMu.Unlock()
}

// closeSubscriptions ends every subscription of st.
func (st *streamState) closeSubscriptions() {
	st.subsMu.Lock()
	defer st.subsMu.Unlock()
	for _, s := range st.subs {
		s.cancel()
	}
}

// closeSubscriptionsOf ends the subscriptions of one consumer.
func (st *streamState) closeSubscriptionsOf(consumer string) {
	st.subsMu.Lock()
	defer st.subsMu.Unlock()
	for _, s := range st.subs {
		if s.consumer == consumer {
			s.cancel()
		}
	}
}

// errSubscriptionGone is sent when the stream, shard or consumer of a running subscription disappears.
func (s *subscription) goneErr() *APIError {
	return errNotFound("Stream %s under account %s not found.", s.st.meta.Name, s.e.cfg.AccountID)
}

// run pushes events to send until the subscription's lifetime ends, ctx is done, the shard is read to
// its end, or send fails. It returns nil when the stream ended normally, or the error to report in an
// exception event.
func (s *subscription) run(ctx context.Context, send func(*subscribeEvent) error) *APIError {
	e := s.e
	deadline := time.NewTimer(e.cfg.SubscriptionDuration)
	defer deadline.Stop()
	hb := time.NewTimer(0) // the first event goes out at once, as the service's does
	defer hb.Stop()
	var readBucket bucket
	if !e.cfg.DisableThrottling {
		readBucket = newBucket(float64(e.cfg.Limits.ShardReadBytesPerSec), float64(e.cfg.Limits.ShardReadBytesPerSec), e.now())
	}
	heartbeat := false
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		changed := s.sh.changed()
		s.st.mu.RLock()
		gone := s.st.gone || s.st.findConsumer(s.consumer) == nil
		closed := !s.sh.meta.Closed.IsZero()
		endIndex := s.sh.meta.EndIndex
		retention := e.retention(s.st.meta)
		var children []childShard
		if closed {
			children = s.st.childShards(s.sh)
		}
		s.st.mu.RUnlock()
		if gone {
			return s.goneErr()
		}
		if h, aerr := e.horizon(s.sh, retention); aerr != nil {
			return aerr
		} else if s.pos < h {
			s.pos = h
		}
		var ev subscribeEvent
		if !closed || s.pos < endIndex {
			maxBytes := e.cfg.Limits.MaxGetRecordsBytes
			if !e.cfg.DisableThrottling {
				now := e.now()
				if !readBucket.positive(now) {
					maxBytes = 0
				} else {
					maxBytes = min(maxBytes, int(readBucket.tokens)+1)
				}
			}
			var recs []storage.Record
			if maxBytes > 0 {
				r, err := s.sh.log.Read(s.pos, e.cfg.Limits.MaxGetRecordsRecords, maxBytes)
				if err != nil {
					return errInternal(err)
				}
				recs = r
			}
			if closed {
				for len(recs) > 0 && recs[len(recs)-1].Index >= endIndex {
					recs = recs[:len(recs)-1]
				}
			}
			size := 0
			ev.Records = make([]recordOut, len(recs))
			for i, r := range recs {
				ev.Records[i] = recordOut{SequenceNumber: s.sh.seq(r.Index + 1).String(),
					ApproximateArrivalTimestamp: epochTime{r.Arrival}, Data: r.Data, PartitionKey: r.PartitionKey}
				size += r.Size()
				s.pos = r.Index + 1
			}
			if !e.cfg.DisableThrottling && size > 0 {
				readBucket.take(float64(size))
			}
			e.metrics.get(s.st.meta.Name, len(recs), size)
		} else {
			ev.Records = []recordOut{}
		}
		end := closed && s.pos >= endIndex
		if end {
			ev.ChildShards = children
			if ev.ChildShards == nil {
				ev.ChildShards = []childShard{}
			}
		} else {
			cont := s.sh.seq(s.pos).String()
			ev.ContinuationSequenceNumber = &cont
			ev.MillisBehindLatest = e.behind(s.sh, s.pos, e.now())
		}
		if len(ev.Records) > 0 || end || heartbeat {
			if err := send(&ev); err != nil {
				return nil
			}
			hb.Reset(e.cfg.SubscriptionHeartbeat)
			heartbeat = false
		}
		if end {
			return nil
		}
		if len(ev.Records) > 0 && s.pos < s.sh.log.Next() {
			if e.cfg.DisableThrottling || readBucket.positive(e.now()) {
				continue
			}
		}
		if !e.cfg.DisableThrottling && s.pos < s.sh.log.Next() {
			retry.Reset(100 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-changed:
		case <-retry.C:
		case <-hb.C:
			heartbeat = true
		}
	}
}
