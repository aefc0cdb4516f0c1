package stream

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

func (e *engine) createStream(in *createStreamInput) (any, *APIError) {
	var v validationErrors
	v.str("streamName", in.StreamName, true, 1, 128, streamNameRe, streamNamePattern)
	v.integer("shardCount", in.ShardCount, false, 1, math.MaxInt32)
	if in.StreamModeDetails != nil {
		v.enum("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode, true, modeProvisioned, modeOnDemand)
	}
	v.integer("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, false, defaultMaxRecordKiB, largestMaxRecordKiB)
	v.integer("warmThroughputMiBps", in.WarmThroughputMiBps, false, 0, math.MaxInt32)
	if in.Tags != nil {
		v.tagMap("tags", in.Tags)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if aerr := e.checkNewTags(*in.StreamName, in.Tags, nil); aerr != nil {
		return nil, aerr
	}
	mode := modeProvisioned
	if in.StreamModeDetails != nil && in.StreamModeDetails.StreamMode != nil {
		mode = *in.StreamModeDetails.StreamMode
	}
	name := *in.StreamName
	m := &streamMeta{
		Name: name, ID: newStreamID(), Created: e.now().UTC(), Status: statusActive,
		RetentionHours: minRetentionHours, Mode: mode, Tags: in.Tags, Encryption: "NONE",
		MaxRecordKiB: defaultMaxRecordKiB,
	}
	if in.MaxRecordSizeInKiB != nil {
		m.MaxRecordKiB = *in.MaxRecordSizeInKiB
	}
	count := defaultShardCount
	switch mode {
	case modeProvisioned:
		if in.WarmThroughputMiBps != nil && *in.WarmThroughputMiBps > 0 {
			return nil, errInvalidArg("WarmThroughputMiBps can only be specified for ON_DEMAND streams.")
		}
		if in.ShardCount != nil {
			count = *in.ShardCount
		}
	case modeOnDemand:
		if in.WarmThroughputMiBps != nil {
			m.WarmMiBps = *in.WarmThroughputMiBps
		}
		count = e.warmShards(m)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.streams[name]; ok {
		return nil, errInUse("Stream %s under account %s already exists.", name, e.cfg.AccountID)
	}
	if cur := e.openShardCount(); cur+count > e.cfg.Limits.ShardLimit {
		return nil, e.shardLimitErr(cur, count)
	}
	if mode == modeOnDemand {
		n := 0
		for _, st := range e.streams {
			st.mu.RLock()
			if st.meta.Mode == modeOnDemand {
				n++
			}
			st.mu.RUnlock()
		}
		if n >= e.cfg.Limits.OnDemandStreamCountLimit {
			return nil, errLimit("This request would exceed the on-demand stream count limit of %d for the account %s in %s.",
				e.cfg.Limits.OnDemandStreamCountLimit, e.cfg.AccountID, e.cfg.Region)
		}
	}
	st := &streamState{meta: m, shards: map[int]*shardState{}}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range uniformRanges(count) {
		sh, err := e.newShard(st, r[0], r[1], -1, -1)
		if err != nil {
			e.backend.DeleteStream(name)
			return nil, errInternal(err)
		}
		sh.meta.Created = m.Created // the initial shards are as old as the stream

	}
	if e.cfg.CreateDelay > 0 {
		m.Status = statusCreating
		m.StatusUntil = e.now().Add(e.cfg.CreateDelay)
	}
	if err := e.persist(st); err != nil {
		e.backend.DeleteStream(name)
		return nil, errInternal(err)
	}
	e.rebuildOpen(st)
	e.streams[name] = st
	if m.Status == statusCreating {
		e.scheduleTransition(st)
	}
	e.log.Info("stream created", "stream", name, "mode", mode, "shards", count)
	return empty{}, nil
}

func (e *engine) deleteStream(in *deleteStreamInput) (any, *APIError) {
	var v validationErrors
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	if st.gone || st.meta.Status == statusDeleting {
		st.mu.Unlock()
		return nil, e.notFound(st.meta.Name)
	}
	if st.meta.Status == statusCreating {
		st.mu.Unlock()
		return nil, errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.meta.Name, e.cfg.AccountID, st.meta.Status)
	}
	if len(st.meta.Consumers) > 0 && (in.EnforceConsumerDeletion == nil || !*in.EnforceConsumerDeletion) {
		st.mu.Unlock()
		return nil, errInUse("Stream %s under account %s has registered consumers. Deregister them or set EnforceConsumerDeletion.", st.meta.Name, e.cfg.AccountID)
	}
	st.meta.Status = statusDeleting
	st.meta.Pending = nil
	if e.cfg.DeleteDelay > 0 {
		st.meta.StatusUntil = e.now().Add(e.cfg.DeleteDelay)
		if err := e.persist(st); err != nil {
			st.mu.Unlock()
			return nil, errInternal(err)
		}
		e.scheduleTransition(st)
		st.mu.Unlock()
		st.closeSubscriptions()
		return empty{}, nil
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	st.mu.Unlock()
	e.finishDelete(st)
	e.log.Info("stream deleted", "stream", st.meta.Name)
	return empty{}, nil
}

func (e *engine) listStreams(in *listStreamsInput) (any, *APIError) {
	var v validationErrors
	v.integer("limit", in.Limit, false, 1, 10000)
	v.str("exclusiveStartStreamName", in.ExclusiveStartStreamName, false, 1, 128, streamNameRe, streamNamePattern)
	v.str("nextToken", in.NextToken, false, 1, 1048576, nil, "")
	if err := v.err(); err != nil {
		return nil, err
	}
	limit := 100 // the default, and the most one call returns
	if in.Limit != nil && *in.Limit < limit {
		limit = *in.Limit
	}
	after := ""
	if in.ExclusiveStartStreamName != nil {
		after = *in.ExclusiveStartStreamName
	}
	if in.NextToken != nil {
		p, err := e.decodePage(tokenListStreams, *in.NextToken)
		if err != nil {
			return nil, errInvalidArg("Invalid NextToken.")
		}
		if e.now().Sub(p.issued) > e.cfg.NextTokenTTL {
			return nil, apiErr(ErrExpiredNextToken, 400, "The nextToken has expired.")
		}
		after = p.after
	}
	out := &listStreamsOutput{StreamNames: []string{}, StreamSummaries: []streamSummary{}}
	for _, name := range e.sortedStreamNames() {
		if after != "" && name <= after {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			last := out.StreamNames[len(out.StreamNames)-1]
			tok := e.encodePage(tokenListStreams, pageToken{after: last, issued: e.now()})
			out.NextToken = &tok
			break
		}
		e.mu.RLock()
		st := e.streams[name]
		e.mu.RUnlock()
		if st == nil {
			continue
		}
		st.mu.RLock()
		m := st.meta
		out.StreamNames = append(out.StreamNames, name)
		out.StreamSummaries = append(out.StreamSummaries, streamSummary{
			StreamName: name, StreamARN: e.streamARN(name), StreamStatus: m.Status,
			StreamModeDetails: &streamModeDetails{StreamMode: &m.Mode}, StreamCreationTimestamp: newEpochTime(m.Created),
		})
		st.mu.RUnlock()
	}
	return out, nil
}

// shardOut renders a shard for DescribeStream and ListShards.
func shardToOut(sh *shardState) shardOut {
	o := shardOut{
		ShardId:      sh.id,
		HashKeyRange: hashKeyRange{sh.meta.Start, sh.meta.End},
		SequenceNumberRange: sequenceNumberRange{
			StartingSequenceNumber: sh.seq(0).String(),
		},
	}
	if sh.meta.Parent >= 0 {
		p := shardName(sh.meta.Parent)
		o.ParentShardId = &p
	}
	if sh.meta.AdjParent >= 0 {
		p := shardName(sh.meta.AdjParent)
		o.AdjacentParentShardId = &p
	}
	if !sh.meta.Closed.IsZero() {
		end := sh.seq(sh.meta.EndIndex).String()
		o.SequenceNumberRange.EndingSequenceNumber = &end
	}
	return o
}

// seq returns the sequence number whose sequence index is seqIx (a record's storage index plus one).
func (sh *shardState) seq(seqIx uint64) seqNum {
	return seqNum{created: sh.meta.Created.Unix(), shard: uint32(sh.meta.Index), seqIx: seqIx}
}

// sortedShards returns every listed shard of st by index. The caller holds st.mu.
func (st *streamState) sortedShards() []*shardState {
	out := make([]*shardState, 0, len(st.shards))
	for _, sh := range st.shards {
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].meta.Index < out[j].meta.Index })
	return out
}

func (e *engine) describeStream(in *describeStreamInput) (any, *APIError) {
	var v validationErrors
	v.integer("limit", in.Limit, false, 1, 10000)
	v.str("exclusiveStartShardId", in.ExclusiveStartShardId, false, 1, 128, shardIDPatternRe, shardIDPattern)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	limit := 100 // the default, and the most one call returns
	if in.Limit != nil && *in.Limit < limit {
		limit = *in.Limit
	}
	after := -1
	if in.ExclusiveStartShardId != nil {
		if ix, ok := parseShardID(*in.ExclusiveStartShardId); ok {
			after = ix
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.gone {
		return nil, e.notFound(st.meta.Name)
	}
	m := st.meta
	d := streamDescription{
		StreamName: m.Name, StreamARN: e.streamARN(m.Name), StreamStatus: m.Status,
		StreamModeDetails: &streamModeDetails{StreamMode: &m.Mode}, Shards: []shardOut{},
		RetentionPeriodHours: m.RetentionHours, StreamCreationTimestamp: epochTime{m.Created},
		EnhancedMonitoring: []enhancedMetrics{{ShardLevelMetrics: nonNil(m.Metrics)}},
		EncryptionType:     m.Encryption,
	}
	if m.KeyID != "" {
		d.KeyId = &m.KeyID
	}
	if m.Status != statusCreating {
		for _, sh := range st.sortedShards() {
			if sh.meta.Index <= after {
				continue
			}
			if len(d.Shards) == limit {
				d.HasMoreShards = true
				break
			}
			d.Shards = append(d.Shards, shardToOut(sh))
		}
	}
	return &describeStreamOutput{StreamDescription: d}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (e *engine) describeStreamSummary(in *streamRef) (any, *APIError) {
	var v validationErrors
	v.ref(*in)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(*in)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.gone {
		return nil, e.notFound(st.meta.Name)
	}
	m := st.meta
	s := streamDescriptionSummary{
		StreamName: m.Name, StreamARN: e.streamARN(m.Name), StreamId: m.ID, StreamStatus: m.Status,
		StreamModeDetails: &streamModeDetails{StreamMode: &m.Mode}, RetentionPeriodHours: m.RetentionHours,
		StreamCreationTimestamp: epochTime{m.Created},
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: nonNil(m.Metrics)}},
		EncryptionType:          m.Encryption, OpenShardCount: len(st.open), ConsumerCount: len(m.Consumers),
		MaxRecordSizeInKiB: m.MaxRecordKiB,
	}
	if m.KeyID != "" {
		s.KeyId = &m.KeyID
	}
	if m.Mode == modeOnDemand {
		s.WarmThroughput = e.warmOut(st)
	}
	return &describeStreamSummaryOutput{StreamDescriptionSummary: s}, nil
}

// warmOut renders the warm throughput of an ON_DEMAND stream. The caller holds st.mu.
func (e *engine) warmOut(st *streamState) *warmThroughput {
	cur := len(st.open) * e.cfg.Limits.ShardWriteBytesPerSec / mib
	tgt := st.meta.WarmMiBps
	if st.meta.Pending != nil && st.meta.Pending.Kind == "warm" {
		tgt = st.meta.Pending.Target
	}
	return &warmThroughput{TargetMiBps: &tgt, CurrentMiBps: &cur}
}

// Shard filter types of ListShards.
var shardFilterTypes = []string{"AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP"}

func (e *engine) listShards(in *listShardsInput) (any, *APIError) {
	var v validationErrors
	v.integer("maxResults", in.MaxResults, false, 1, 10000)
	v.str("exclusiveStartShardId", in.ExclusiveStartShardId, false, 1, 128, shardIDPatternRe, shardIDPattern)
	v.str("nextToken", in.NextToken, false, 1, 1048576, nil, "")
	if in.ShardFilter != nil {
		v.enum("shardFilter.type", in.ShardFilter.Type, true, shardFilterTypes...)
		v.str("shardFilter.shardId", in.ShardFilter.ShardId, false, 1, 128, shardIDPatternRe, shardIDPattern)
	}
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	hasStream := in.StreamName != nil || in.StreamARN != nil || in.StreamId != nil
	if in.NextToken != nil && (in.StreamName != nil) {
		return nil, errInvalidArg("NextToken and StreamName cannot be provided together.")
	}
	if in.NextToken != nil && in.StreamARN != nil {
		return nil, errInvalidArg("NextToken and StreamARN cannot be provided together.")
	}
	if in.NextToken != nil && in.StreamId != nil {
		return nil, errInvalidArg("NextToken and StreamId cannot be provided together.")
	}
	if in.NextToken == nil && !hasStream {
		return nil, errInvalidArg("Either NextToken or StreamName should be provided.")
	}
	if in.NextToken != nil && in.ExclusiveStartShardId != nil {
		return nil, errInvalidArg("NextToken and ExclusiveStartShardId cannot be provided together.")
	}
	if in.NextToken != nil && in.ShardFilter != nil {
		return nil, errInvalidArg("NextToken and ShardFilter cannot be provided together.")
	}
	if in.NextToken != nil && in.StreamCreationTimestamp != nil {
		return nil, errInvalidArg("NextToken and StreamCreationTimestamp cannot be provided together.")
	}
	if in.ExclusiveStartShardId != nil && in.ShardFilter != nil {
		return nil, errInvalidArg("ExclusiveStartShardId and ShardFilter cannot be provided together.")
	}
	maxResults := 1000
	if in.MaxResults != nil && *in.MaxResults < maxResults {
		maxResults = *in.MaxResults
	}
	filter := ""
	var filterShard string
	var filterTime time.Time
	after := -1
	var st *streamState
	var aerr *APIError
	if in.NextToken != nil {
		p, err := e.decodePage(tokenListShards, *in.NextToken)
		if err != nil {
			return nil, errInvalidArg("Invalid NextToken.")
		}
		if e.now().Sub(p.issued) > e.cfg.NextTokenTTL {
			return nil, apiErr(ErrExpiredNextToken, 400, "The timestamp in the nextToken has expired.")
		}
		n := p.stream
		st, aerr = e.resolve(streamRef{StreamName: &n})
		if aerr != nil {
			return nil, aerr
		}
		st.mu.RLock()
		created := st.meta.Created.UnixNano()
		st.mu.RUnlock()
		if created != p.created {
			return nil, e.notFound(n)
		}
		after, _ = parseShardID(p.after)
		filter = p.filter
		if filter != "" {
			parts := strings.SplitN(filter, "|", 3)
			filter = parts[0]
			if len(parts) == 3 {
				filterShard = parts[1]
				ms := int64(0)
				fmt.Sscan(parts[2], &ms)
				filterTime = time.UnixMilli(ms)
			}
		}
		if in.MaxResults == nil && p.max > 0 {
			maxResults = p.max
		}
	} else {
		st, aerr = e.resolve(in.streamRef)
		if aerr != nil {
			return nil, aerr
		}
		if in.ExclusiveStartShardId != nil {
			if ix, ok := parseShardID(*in.ExclusiveStartShardId); ok {
				after = ix
			}
		}
		if f := in.ShardFilter; f != nil {
			filter = *f.Type
			switch filter {
			case "AFTER_SHARD_ID":
				if f.ShardId == nil {
					return nil, errInvalidArg("ShardId must be provided for ShardFilter of type AFTER_SHARD_ID.")
				}
				filterShard = *f.ShardId
				if ix, ok := parseShardID(filterShard); ok {
					after = ix
				}
			case "AT_TIMESTAMP", "FROM_TIMESTAMP":
				if f.Timestamp == nil {
					return nil, errInvalidArg("Timestamp must be provided for ShardFilter of type %s.", filter)
				}
				filterTime = f.Timestamp.Time
			}
			if f.ShardId != nil && filter != "AFTER_SHARD_ID" {
				return nil, errInvalidArg("ShardId can only be provided for ShardFilter of type AFTER_SHARD_ID.")
			}
			if f.Timestamp != nil && filter != "AT_TIMESTAMP" && filter != "FROM_TIMESTAMP" {
				return nil, errInvalidArg("Timestamp can only be provided for ShardFilter of type AT_TIMESTAMP or FROM_TIMESTAMP.")
			}
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.gone {
		return nil, e.notFound(st.meta.Name)
	}
	if in.StreamCreationTimestamp != nil && !in.StreamCreationTimestamp.Equal(st.meta.Created.Truncate(time.Millisecond)) &&
		in.StreamCreationTimestamp.Unix() != st.meta.Created.Unix() {
		return nil, e.notFound(st.meta.Name)
	}
	if st.meta.Status == statusCreating {
		return nil, errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.meta.Name, e.cfg.AccountID, st.meta.Status)
	}
	now := e.now()
	horizon := now.Add(-e.retention(st.meta))
	if horizon.Before(st.meta.Created) {
		horizon = st.meta.Created
	}
	// openAt: the shard started at or before t and ended at or after t (or is still open).
	openAt := func(sh *shardState, t time.Time) bool {
		return !sh.meta.Created.After(t) && (sh.meta.Closed.IsZero() || !sh.meta.Closed.Before(t))
	}
	keep := func(sh *shardState) bool {
		switch filter {
		case "AT_LATEST":
			return sh.meta.Closed.IsZero()
		case "AT_TRIM_HORIZON":
			return openAt(sh, horizon)
		case "AT_TIMESTAMP":
			t := filterTime
			if t.Before(st.meta.Created) {
				t = st.meta.Created
			}
			return openAt(sh, t)
		case "FROM_TIMESTAMP":
			t := filterTime
			if t.Before(horizon) {
				t = horizon // corrected to the trim horizon, as documented
			}
			return sh.meta.Closed.IsZero() || !sh.meta.Closed.Before(t)
		}
		return true
	}
	out := &listShardsOutput{Shards: []shardOut{}}
	last := ""
	for _, sh := range st.sortedShards() {
		if sh.meta.Index <= after || !keep(sh) {
			continue
		}
		if len(out.Shards) == maxResults {
			f := ""
			if filter != "" {
				f = fmt.Sprintf("%s|%s|%d", filter, filterShard, filterTime.UnixMilli())
			}
			tok := e.encodePage(tokenListShards, pageToken{stream: st.meta.Name, created: st.meta.Created.UnixNano(),
				after: last, filter: f, issued: now})
			out.NextToken = &tok
			break
		}
		out.Shards = append(out.Shards, shardToOut(sh))
		last = sh.id
	}
	return out, nil
}

// lookupShard resolves a shard id of st. The caller holds st.mu.
func (e *engine) lookupShard(st *streamState, id string) (*shardState, *APIError) {
	ix, ok := parseShardID(id)
	var sh *shardState
	if ok {
		sh = st.shards[ix]
	}
	if sh == nil {
		if ok {
			id = shardName(ix)
		}
		return nil, errNotFound("Could not find shard %s in stream %s under account %s.", id, st.meta.Name, e.cfg.AccountID)
	}
	return sh, nil
}

func (e *engine) onDemandReshardErr(st *streamState, op string) *APIError {
	return apiErr(ErrValidation, 400, "%s is not supported for stream %s under account %s because it is in ON_DEMAND capacity mode.",
		op, st.meta.Name, e.cfg.AccountID)
}

func (e *engine) splitShard(in *splitShardInput) (any, *APIError) {
	var v validationErrors
	v.str("shardToSplit", in.ShardToSplit, true, 1, 128, shardIDPatternRe, shardIDPattern)
	v.str("newStartingHashKey", in.NewStartingHashKey, true, 0, 0, hashKeyPatternRe, hashKeyPattern)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	if st.meta.Mode == modeOnDemand {
		return nil, e.onDemandReshardErr(st, "SplitShard")
	}
	sh, aerr := e.lookupShard(st, *in.ShardToSplit)
	if aerr != nil {
		return nil, aerr
	}
	if !sh.meta.Closed.IsZero() {
		return nil, errInvalidArg("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for splitting.",
			sh.id, st.meta.Name, e.cfg.AccountID)
	}
	hk, ok := parseHashKey(*in.NewStartingHashKey)
	if !ok || hk.cmp(sh.start.add1()) <= 0 || hk.cmp(sh.end) >= 0 {
		return nil, errInvalidArg("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			*in.NewStartingHashKey, sh.id, st.meta.Name, e.cfg.AccountID, sh.meta.Start, sh.meta.End)
	}
	if cur := e.openShardCount(); cur+1 > e.cfg.Limits.ShardLimit {
		return nil, e.shardLimitErr(cur, 1)
	}
	return empty{}, e.beginUpdate(st, &pendingOp{Kind: "split", Shard: sh.meta.Index, HashKey: hk.String()})
}

func (e *engine) mergeShards(in *mergeShardsInput) (any, *APIError) {
	var v validationErrors
	v.str("shardToMerge", in.ShardToMerge, true, 1, 128, shardIDPatternRe, shardIDPattern)
	v.str("adjacentShardToMerge", in.AdjacentShardToMerge, true, 1, 128, shardIDPatternRe, shardIDPattern)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	if st.meta.Mode == modeOnDemand {
		return nil, e.onDemandReshardErr(st, "MergeShards")
	}
	a, aerr := e.lookupShard(st, *in.ShardToMerge)
	if aerr != nil {
		return nil, aerr
	}
	b, aerr := e.lookupShard(st, *in.AdjacentShardToMerge)
	if aerr != nil {
		return nil, aerr
	}
	for _, sh := range []*shardState{a, b} {
		if !sh.meta.Closed.IsZero() {
			return nil, errInvalidArg("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging.",
				sh.id, st.meta.Name, e.cfg.AccountID)
		}
	}
	if !adjacent(a, b) && !adjacent(b, a) {
		return nil, errInvalidArg("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging",
			a.id, b.id, st.meta.Name, e.cfg.AccountID)
	}
	return empty{}, e.beginUpdate(st, &pendingOp{Kind: "merge", Shard: a.meta.Index, Other: b.meta.Index})
}

func (e *engine) updateShardCount(in *updateShardCountInput) (any, *APIError) {
	var v validationErrors
	v.integer("targetShardCount", in.TargetShardCount, true, 1, math.MaxInt32)
	v.enum("scalingType", in.ScalingType, true, "UNIFORM_SCALING")
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	if st.meta.Mode == modeOnDemand {
		return nil, e.onDemandReshardErr(st, "UpdateShardCount")
	}
	cur, target := len(st.open), *in.TargetShardCount
	switch {
	case target > 2*cur:
		return nil, errInvalidArg("UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case target*2 < cur:
		return nil, errInvalidArg("UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: %d Target shard count: %d", cur, target)
	case target > maxTargetShardCount:
		return nil, errInvalidArg("UpdateShardCount cannot scale up to more than %d shards in a stream. Target shard count: %d", maxTargetShardCount, target)
	}
	if total := e.openShardCount(); total-cur+target > e.cfg.Limits.ShardLimit {
		return nil, e.shardLimitErr(total, target-cur)
	}
	now := e.now()
	recent := st.meta.ShardCountUpdates[:0]
	for _, t := range st.meta.ShardCountUpdates {
		if now.Sub(t) < 24*time.Hour {
			recent = append(recent, t)
		}
	}
	st.meta.ShardCountUpdates = recent
	if len(recent) >= e.cfg.Limits.UpdateShardCountPerDay {
		return nil, errLimit("UpdateShardCount cannot be called more than %d times in a rolling 24-hour period for stream %s under account %s.",
			e.cfg.Limits.UpdateShardCountPerDay, st.meta.Name, e.cfg.AccountID)
	}
	out := &updateShardCountOutput{StreamName: st.meta.Name, StreamARN: e.streamARN(st.meta.Name), CurrentShardCount: cur, TargetShardCount: target}
	if target == cur && st.uniform() {
		return out, nil
	}
	st.meta.ShardCountUpdates = append(st.meta.ShardCountUpdates, now)
	if aerr := e.beginUpdate(st, &pendingOp{Kind: "resize", Target: target}); aerr != nil {
		return nil, aerr
	}
	return out, nil
}

// uniform reports whether the open shards already have uniform ranges. The caller holds st.mu.
func (st *streamState) uniform() bool {
	rs := uniformRanges(len(st.open))
	for i, sh := range st.open {
		if sh.start != rs[i][0] || sh.end != rs[i][1] {
			return false
		}
	}
	return true
}

func (e *engine) updateStreamMode(in *updateStreamModeInput) (any, *APIError) {
	var v validationErrors
	v.str("streamARN", in.StreamARN, in.StreamId == nil, 1, 2048, streamARNPatternRe, streamARNPattern)
	v.notNull("streamModeDetails", in.StreamModeDetails != nil)
	if in.StreamModeDetails != nil {
		v.enum("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode, true, modeProvisioned, modeOnDemand)
	}
	v.integer("warmThroughputMiBps", in.WarmThroughputMiBps, false, 0, math.MaxInt32)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(streamRef{StreamARN: in.StreamARN, StreamId: in.StreamId})
	if aerr != nil {
		return nil, aerr
	}
	mode := *in.StreamModeDetails.StreamMode
	if mode == modeOnDemand {
		n := 0
		for _, name := range e.sortedStreamNames() {
			e.mu.RLock()
			o := e.streams[name]
			e.mu.RUnlock()
			if o == nil || o == st {
				continue
			}
			o.mu.RLock()
			if o.meta.Mode == modeOnDemand {
				n++
			}
			o.mu.RUnlock()
		}
		if n >= e.cfg.Limits.OnDemandStreamCountLimit {
			return nil, errLimit("This request would exceed the on-demand stream count limit of %d for the account %s in %s.",
				e.cfg.Limits.OnDemandStreamCountLimit, e.cfg.AccountID, e.cfg.Region)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	if st.meta.Mode == mode && in.WarmThroughputMiBps == nil {
		return nil, errInvalidArg("Stream %s under account %s is already in %s capacity mode.", st.meta.Name, e.cfg.AccountID, mode)
	}
	op := &pendingOp{Kind: "mode", Mode: mode}
	if in.WarmThroughputMiBps != nil {
		if mode != modeOnDemand {
			return nil, errInvalidArg("WarmThroughputMiBps can only be specified for ON_DEMAND streams.")
		}
		op.Target = *in.WarmThroughputMiBps
	}
	return empty{}, e.beginUpdate(st, op)
}

func (e *engine) changeRetention(in *retentionInput, increase bool) (any, *APIError) {
	var v validationErrors
	v.integer("retentionPeriodHours", in.RetentionPeriodHours, true, math.MinInt32, math.MaxInt32)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	h := *in.RetentionPeriodHours
	if h < minRetentionHours {
		return nil, errInvalidArg("Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionHours, h)
	}
	if h > maxRetentionHours {
		return nil, errInvalidArg("Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionHours, h)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	cur := st.meta.RetentionHours
	if increase && h < cur {
		return nil, errInvalidArg("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, st.meta.Name, cur)
	}
	if !increase && h > cur {
		return nil, errInvalidArg("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, st.meta.Name, cur)
	}
	st.meta.RetentionHours = h
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	return empty{}, nil
}

// tagTarget resolves the stream (and, for a consumer ARN, the consumer) a tagging call names.
func (e *engine) tagTarget(arn string) (*streamState, string, *APIError) {
	if c, ok := parseConsumerARN(arn); ok {
		if c.account != e.cfg.AccountID || c.region != e.cfg.Region {
			return nil, "", errNotFound("Consumer %s not found.", arn)
		}
		n := c.stream
		st, aerr := e.resolve(streamRef{StreamName: &n})
		return st, c.consumer, aerr
	}
	if _, ok := parseStreamARN(arn); ok {
		st, aerr := e.resolve(streamRef{StreamARN: &arn})
		return st, "", aerr
	}
	return nil, "", errInvalidArg("ResourceARN %s is not a valid stream or consumer ARN.", arn)
}

// tagsOf returns the tag map of a stream or one of its consumers. The caller holds st.mu.
func (e *engine) tagsOf(st *streamState, consumer string, create bool) (map[string]string, *APIError) {
	if consumer == "" {
		if st.meta.Tags == nil && create {
			st.meta.Tags = map[string]string{}
		}
		return st.meta.Tags, nil
	}
	for _, c := range st.meta.Consumers {
		if c.Name == consumer {
			if c.Tags == nil && create {
				c.Tags = map[string]string{}
			}
			return c.Tags, nil
		}
	}
	return nil, errNotFound("Consumer %s under stream %s under account %s not found.", consumer, st.meta.Name, e.cfg.AccountID)
}

func (e *engine) addTags(st *streamState, consumer string, tags map[string]string) (any, *APIError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return nil, e.notFound(st.meta.Name)
	}
	cur, aerr := e.tagsOf(st, consumer, true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := e.checkNewTags(st.meta.Name, tags, cur); aerr != nil {
		return nil, aerr
	}
	for k, v := range tags {
		cur[k] = v
	}
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	return empty{}, nil
}

func (e *engine) removeTags(st *streamState, consumer string, keys []string) (any, *APIError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return nil, e.notFound(st.meta.Name)
	}
	cur, aerr := e.tagsOf(st, consumer, false)
	if aerr != nil {
		return nil, aerr
	}
	for _, k := range keys {
		if !tagCharsOK(k) {
			return nil, errInvalidArg("%s", msgTagChars)
		}
	}
	for _, k := range keys {
		delete(cur, k)
	}
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	return empty{}, nil
}

func sortedTags(m map[string]string) []tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]tag, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		out = append(out, tag{Key: k, Value: &v})
	}
	return out
}

func (e *engine) addTagsToStream(in *addTagsInput) (any, *APIError) {
	var v validationErrors
	v.notNull("tags", in.Tags != nil)
	if in.Tags != nil {
		v.tagMap("tags", in.Tags)
	}
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	return e.addTags(st, "", in.Tags)
}

func (e *engine) removeTagsFromStream(in *removeTagsInput) (any, *APIError) {
	var v validationErrors
	v.tagKeys("tagKeys", in.TagKeys, in.TagKeys != nil)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	return e.removeTags(st, "", in.TagKeys)
}

func (e *engine) listTagsForStream(in *listTagsForStreamInput) (any, *APIError) {
	var v validationErrors
	v.str("exclusiveStartTagKey", in.ExclusiveStartTagKey, false, 1, 128, nil, "")
	v.integer("limit", in.Limit, false, 1, 50)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	limit := 50
	if in.Limit != nil {
		limit = *in.Limit
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := &listTagsForStreamOutput{Tags: []tag{}}
	for _, t := range sortedTags(st.meta.Tags) {
		if in.ExclusiveStartTagKey != nil && t.Key <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}

func (e *engine) tagResource(in *tagResourceInput) (any, *APIError) {
	var v validationErrors
	v.str("resourceARN", in.ResourceARN, true, 1, 2048, resourceARNPatternRe, resourceARNPattern)
	v.notNull("tags", in.Tags != nil)
	if in.Tags != nil {
		v.tagMap("tags", in.Tags)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, consumer, aerr := e.tagTarget(*in.ResourceARN)
	if aerr != nil {
		return nil, aerr
	}
	return e.addTags(st, consumer, in.Tags)
}

func (e *engine) untagResource(in *tagResourceInput) (any, *APIError) {
	var v validationErrors
	v.str("resourceARN", in.ResourceARN, true, 1, 2048, resourceARNPatternRe, resourceARNPattern)
	v.tagKeys("tagKeys", in.TagKeys, in.TagKeys != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, consumer, aerr := e.tagTarget(*in.ResourceARN)
	if aerr != nil {
		return nil, aerr
	}
	return e.removeTags(st, consumer, in.TagKeys)
}

func (e *engine) listTagsForResource(in *tagResourceInput) (any, *APIError) {
	var v validationErrors
	v.str("resourceARN", in.ResourceARN, true, 1, 2048, resourceARNPatternRe, resourceARNPattern)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, consumer, aerr := e.tagTarget(*in.ResourceARN)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	tags, aerr := e.tagsOf(st, consumer, false)
	if aerr != nil {
		return nil, aerr
	}
	return &listTagsForResourceOutput{Tags: sortedTags(tags)}, nil
}

func (e *engine) describeLimits() (any, *APIError) {
	out := &describeLimitsOutput{ShardLimit: e.cfg.Limits.ShardLimit, OpenShardCount: e.openShardCount(),
		OnDemandStreamCountLimit: e.cfg.Limits.OnDemandStreamCountLimit}
	for _, name := range e.sortedStreamNames() {
		e.mu.RLock()
		st := e.streams[name]
		e.mu.RUnlock()
		if st == nil {
			continue
		}
		st.mu.RLock()
		if st.meta.Mode == modeOnDemand {
			out.OnDemandStreamCount++
		}
		st.mu.RUnlock()
	}
	return out, nil
}

func (e *engine) setEncryption(in *encryptionInput, start bool) (any, *APIError) {
	var v validationErrors
	v.enum("encryptionType", in.EncryptionType, true, "NONE", "KMS")
	v.str("keyId", in.KeyId, true, 1, 2048, nil, "")
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	if *in.EncryptionType != "KMS" {
		return nil, errInvalidArg("Encryption type %s is not supported. Use KMS.", *in.EncryptionType)
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	op := &pendingOp{Kind: "encryption", Encryption: "NONE"}
	if start {
		op.Encryption, op.KeyID = "KMS", *in.KeyId
	}
	return empty{}, e.beginUpdate(st, op)
}

// shardLevelMetrics are the metric names EnableEnhancedMonitoring accepts.
var shardLevelMetrics = []string{"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds", "ALL"}

func (e *engine) setMonitoring(in *monitoringInput, enable bool) (any, *APIError) {
	var v validationErrors
	v.notNull("shardLevelMetrics", in.ShardLevelMetrics != nil)
	for i := range in.ShardLevelMetrics {
		v.enum(fmt.Sprintf("shardLevelMetrics.%d.member", i+1), &in.ShardLevelMetrics[i], true, shardLevelMetrics...)
	}
	if in.ShardLevelMetrics != nil && len(in.ShardLevelMetrics) < 1 {
		v.add(quote(javaList(in.ShardLevelMetrics)), "shardLevelMetrics", "Member must have length greater than or equal to 1")
	}
	if len(in.ShardLevelMetrics) > 7 {
		v.add(quote(javaList(in.ShardLevelMetrics)), "shardLevelMetrics", "Member must have length less than or equal to 7")
	}
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	cur := append([]string(nil), st.meta.Metrics...)
	set := map[string]bool{}
	for _, m := range cur {
		set[m] = true
	}
	for _, m := range in.ShardLevelMetrics {
		names := []string{m}
		if m == "ALL" {
			names = shardLevelMetrics[:7]
		}
		for _, n := range names {
			set[n] = enable
		}
	}
	var desired []string
	for _, n := range shardLevelMetrics[:7] {
		if set[n] {
			desired = append(desired, n)
		}
	}
	st.meta.Metrics = desired
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	return &monitoringOutput{StreamName: st.meta.Name, StreamARN: e.streamARN(st.meta.Name),
		CurrentShardLevelMetrics: nonNil(cur), DesiredShardLevelMetrics: nonNil(desired)}, nil
}

func (e *engine) updateWarmThroughput(in *warmThroughputInput) (any, *APIError) {
	var v validationErrors
	v.integer("warmThroughputMiBps", in.WarmThroughputMiBps, true, 0, math.MaxInt32)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	if st.meta.Mode != modeOnDemand {
		return nil, errInvalidArg("Warm throughput can only be configured for streams in ON_DEMAND capacity mode.")
	}
	want := (*in.WarmThroughputMiBps*mib + e.cfg.Limits.ShardWriteBytesPerSec - 1) / e.cfg.Limits.ShardWriteBytesPerSec
	if cur := e.openShardCount(); want > len(st.open) && cur-len(st.open)+want > e.cfg.Limits.ShardLimit {
		return nil, e.shardLimitErr(cur, want-len(st.open))
	}
	if aerr := e.beginUpdate(st, &pendingOp{Kind: "warm", Target: *in.WarmThroughputMiBps}); aerr != nil {
		return nil, aerr
	}
	return &warmThroughputOutput{StreamName: st.meta.Name, StreamARN: e.streamARN(st.meta.Name), WarmThroughput: *e.warmOut(st)}, nil
}

func (e *engine) updateMaxRecordSize(in *maxRecordSizeInput) (any, *APIError) {
	var v validationErrors
	v.integer("maxRecordSizeInKiB", in.MaxRecordSizeInKiB, true, defaultMaxRecordKiB, largestMaxRecordKiB)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if aerr := e.mustBeActive(st); aerr != nil {
		return nil, aerr
	}
	return empty{}, e.beginUpdate(st, &pendingOp{Kind: "maxRecord", Target: *in.MaxRecordSizeInKiB})
}

func (e *engine) resourcePolicy(in *resourcePolicyInput, op string) (any, *APIError) {
	var v validationErrors
	v.str("resourceARN", in.ResourceARN, true, 1, 2048, resourceARNPatternRe, resourceARNPattern)
	if op == "put" {
		v.str("policy", in.Policy, true, 1, 20480, nil, "")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	st, _, aerr := e.tagTarget(*in.ResourceARN)
	if aerr != nil {
		return nil, aerr
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch op {
	case "get":
		p := st.meta.Policy
		if p == "" {
			p = "{}"
		}
		return &getResourcePolicyOutput{Policy: p}, nil
	case "put":
		st.meta.Policy = *in.Policy
	case "delete":
		if st.meta.Policy == "" {
			return nil, errNotFound("No resource policy found for resource %s.", *in.ResourceARN)
		}
		st.meta.Policy = ""
	}
	if err := e.persist(st); err != nil {
		return nil, errInternal(err)
	}
	return empty{}, nil
}

// adjacent reports whether b's range starts right after a's.
func adjacent(a, b *shardState) bool { return a.end != maxHashKey && a.end.add1() == b.start }

// checkNewTags applies the service's rules to tags being added to a resource that holds cur: allowed
// characters (InvalidArgumentException) and at most MaxTagsPerStream tags per resource.
func (e *engine) checkNewTags(stream string, tags, cur map[string]string) *APIError {
	for k, v := range tags {
		if !tagCharsOK(k) || !tagCharsOK(v) {
			return errInvalidArg("%s", msgTagChars)
		}
	}
	n := len(cur)
	for k := range tags {
		if _, ok := cur[k]; !ok {
			n++
		}
	}
	if n > e.cfg.Limits.MaxTagsPerStream {
		return errInvalidArg("Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags associated with it.",
			stream, e.cfg.AccountID, e.cfg.Limits.MaxTagsPerStream)
	}
	return nil
}
