package stream

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// putEntry is one record to write, validated.
type putEntry struct {
	data []byte
	pk   string
	ehk  string
	hash hashKey
}

// putResult is the outcome of one record of a put.
type putResult struct {
	shard string
	seq   string
	err   *APIError // throughput or internal failure of this record
}

// validateExplicitHashKey parses an ExplicitHashKey, or returns the service's error.
func validateExplicitHashKey(s string) (hashKey, *APIError) {
	hk, ok := parseHashKey(s)
	if !ok {
		return hashKey{}, errInvalidArg("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", s)
	}
	return hk, nil
}

func (e *engine) putRecord(in *putRecordInput) (any, *APIError) {
	var v validationErrors
	// In the service's order: sequenceNumberForOrdering, partitionKey, explicitHashKey, data, stream.
	v.str("sequenceNumberForOrdering", in.SequenceNumberForOrdering, false, 0, 0, seqNumPatternRe, seqNumPattern)
	v.str("partitionKey", in.PartitionKey, true, 1, 256, nil, "")
	v.str("explicitHashKey", in.ExplicitHashKey, false, 0, 0, hashKeyPatternRe, hashKeyPattern)
	v.blob("data", in.Data, true, largestMaxRecordKiB*kib)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	// The stream is looked up first, then the hash key and the ordering sequence number are checked.
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	ent := putEntry{data: in.Data, pk: *in.PartitionKey}
	if in.ExplicitHashKey != nil {
		hk, aerr := validateExplicitHashKey(*in.ExplicitHashKey)
		if aerr != nil {
			return nil, aerr
		}
		ent.ehk, ent.hash = *in.ExplicitHashKey, hk
	} else {
		ent.hash = partitionHash(ent.pk)
	}
	if sn := in.SequenceNumberForOrdering; sn != nil && !validOrderingSeq(*sn, e.now()) {
		return nil, errInvalidArg("ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account %s is invalid.",
			*sn, st.meta.Name, e.cfg.AccountID)
	}
	res, enc, aerr := e.put(st, []putEntry{ent})
	if aerr != nil {
		return nil, aerr
	}
	if res[0].err != nil {
		return nil, res[0].err
	}
	return &putRecordOutput{ShardId: res[0].shard, SequenceNumber: res[0].seq, EncryptionType: enc}, nil
}

func (e *engine) putRecords(in *putRecordsInput) (any, *APIError) {
	var v validationErrors
	v.notNull("records", in.Records != nil)
	if in.Records != nil {
		if len(in.Records) < 1 {
			v.add("'[]'", "records", "Member must have length greater than or equal to 1")
		}
		if len(in.Records) > e.cfg.Limits.MaxPutRecordsRecords {
			v.add(fmt.Sprintf("'[%d records]'", len(in.Records)), "records",
				fmt.Sprintf("Member must have length less than or equal to %d", e.cfg.Limits.MaxPutRecordsRecords))
		}
		for i, r := range in.Records {
			if r == nil {
				v.add("null", fmt.Sprintf("records.%d.member", i+1), "Member must not be null")
				continue
			}
			v.str(fmt.Sprintf("records.%d.member.partitionKey", i+1), r.PartitionKey, true, 1, 256, nil, "")
			v.str(fmt.Sprintf("records.%d.member.explicitHashKey", i+1), r.ExplicitHashKey, false, 0, 0, hashKeyPatternRe, hashKeyPattern)
			v.blob(fmt.Sprintf("records.%d.member.data", i+1), r.Data, true, largestMaxRecordKiB*kib)
		}
	}
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	ents := make([]putEntry, len(in.Records))
	total := 0
	for i, r := range in.Records {
		ents[i] = putEntry{data: r.Data, pk: *r.PartitionKey}
		if r.ExplicitHashKey != nil {
			hk, aerr := validateExplicitHashKey(*r.ExplicitHashKey)
			if aerr != nil {
				return nil, aerr
			}
			ents[i].ehk, ents[i].hash = *r.ExplicitHashKey, hk
		} else {
			ents[i].hash = partitionHash(ents[i].pk)
		}
		total += len(r.Data) + len(*r.PartitionKey)
	}
	st.mu.RLock()
	limit := max(e.cfg.Limits.MaxPutRecordsBytes, st.meta.MaxRecordKiB*kib)
	st.mu.RUnlock()
	if total > limit {
		return nil, errInvalidArg("Records size exceeds %d MB limit", limit/mib)
	}
	res, enc, aerr := e.put(st, ents)
	if aerr != nil {
		return nil, aerr
	}
	out := &putRecordsOutput{Records: make([]putRecordsResult, len(res)), EncryptionType: enc}
	for i, r := range res {
		if r.err != nil {
			out.FailedRecordCount++
			code, msg := r.err.Type, r.err.Message
			out.Records[i] = putRecordsResult{ErrorCode: &code, ErrorMessage: &msg}
			continue
		}
		shard, seq := r.shard, r.seq
		out.Records[i] = putRecordsResult{ShardId: &shard, SequenceNumber: &seq}
	}
	return out, nil
}

// put routes ents to their shards and appends them, one Append per shard, shards in parallel. Records of
// one shard keep their request order. Per-record failures (throttling, storage errors) are reported in
// the results; a request-level failure (stream missing, record too large) in the error.
func (e *engine) put(st *streamState, ents []putEntry) ([]putResult, string, *APIError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if aerr := e.readable(st); aerr != nil {
		return nil, "", aerr
	}
	maxData := st.meta.MaxRecordKiB * kib
	for i, en := range ents {
		if len(en.data) > maxData {
			field := "data"
			if len(ents) > 1 {
				field = fmt.Sprintf("records.%d.member.data", i+1)
			}
			var v validationErrors
			v.blob(field, en.data, true, maxData)
			return nil, "", v.err()
		}
	}
	enc := ""
	if st.meta.Encryption == "KMS" {
		enc = "KMS"
	}
	groups := map[*shardState][]int{}
	var order []*shardState
	for i, en := range ents {
		sh := st.shardFor(en.hash)
		if sh == nil {
			return nil, "", errInternal(fmt.Errorf("no open shard for hash key %s", en.hash))
		}
		if _, ok := groups[sh]; !ok {
			order = append(order, sh)
		}
		groups[sh] = append(groups[sh], i)
	}
	res := make([]putResult, len(ents))
	if len(order) == 1 {
		e.appendShard(st, order[0], ents, groups[order[0]], res)
	} else {
		var wg sync.WaitGroup
		for _, sh := range order {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.appendShard(st, sh, ents, groups[sh], res)
			}()
		}
		wg.Wait()
	}
	return res, enc, nil
}

// appendShard admits the records idx of ents against sh's write buckets and appends the admitted ones.
// The caller holds st.mu.RLock.
func (e *engine) appendShard(st *streamState, sh *shardState, ents []putEntry, idx []int, res []putResult) {
	now := e.now()
	recs := make([]storage.Record, 0, len(idx))
	admitted := make([]int, 0, len(idx))
	sh.limMu.Lock()
	for _, i := range idx {
		size := len(ents[i].data) + len(ents[i].pk)
		sh.demandBytes.Add(int64(size))
		sh.demandRecs.Add(1)
		if !e.cfg.DisableThrottling {
			if !sh.writeRecs.has(now, 1) || !sh.writeBytes.has(now, float64(size)) {
				res[i].err = apiErr(ErrThroughputExceeded, http.StatusBadRequest,
					"Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.meta.Name, e.cfg.AccountID)
				e.metrics.throttled(st.meta.Name, "write")
				continue
			}
			sh.writeRecs.take(1)
			sh.writeBytes.take(float64(size))
		}
		admitted = append(admitted, i)
		recs = append(recs, storage.Record{PartitionKey: ents[i].pk, ExplicitHashKey: ents[i].ehk, Data: ents[i].data})
	}
	sh.limMu.Unlock()
	if len(recs) == 0 {
		return
	}
	first, err := e.commit(sh, recs)
	if err != nil {
		e.log.Error("append failed", "stream", st.meta.Name, "shard", sh.id, "err", err)
		for _, i := range admitted {
			res[i].err = &APIError{Type: ErrInternalFailure, Message: msgInternalFailure, Status: http.StatusInternalServerError}
		}
		return
	}
	bytes := 0
	for k, i := range admitted {
		res[i].shard = sh.id
		res[i].seq = sh.seq(first + uint64(k) + 1).String()
		bytes += len(recs[k].Data) + len(recs[k].PartitionKey)
	}
	e.metrics.put(st.meta.Name, len(recs), bytes)
}

// appendReq is one caller's records waiting in a shard's group commit.
type appendReq struct {
	recs  []storage.Record
	first uint64
	err   error
	lead  bool // promoted to flush the queue
	done  chan struct{}
}

// commit appends recs to sh's log with group commit: callers queue their records; one of them (the
// leader) appends everything queued in a single Append, so that concurrent writers to a shard share one
// flush to disk, then hands leadership to the first caller that queued meanwhile. Arrival times are
// stamped by the leader, so they never decrease within the shard. It returns the storage index of recs[0].
func (e *engine) commit(sh *shardState, recs []storage.Record) (uint64, error) {
	req := &appendReq{recs: recs, done: make(chan struct{})}
	sh.appendMu.Lock()
	sh.pending = append(sh.pending, req)
	if sh.flushing {
		sh.appendMu.Unlock()
		<-req.done
		if !req.lead {
			return req.first, req.err
		}
		sh.appendMu.Lock()
	} else {
		sh.flushing = true
	}
	batch := sh.pending
	sh.pending = nil
	sh.appendMu.Unlock()

	now := e.now()
	if now.Before(sh.lastArrival) {
		now = sh.lastArrival
	}
	all := recs
	if len(batch) > 1 {
		all = make([]storage.Record, 0, len(batch)*len(recs))
		for _, r := range batch {
			all = append(all, r.recs...)
		}
	}
	for i := range all {
		all[i].Arrival = now
	}
	first, err := sh.log.Append(all)
	if err == nil {
		sh.lastArrival = now
	}
	off := first
	for _, r := range batch {
		r.first, r.err = off, err
		off += uint64(len(r.recs))
	}

	sh.appendMu.Lock()
	if len(sh.pending) > 0 {
		next := sh.pending[0]
		next.lead = true
		close(next.done)
	} else {
		sh.flushing = false
	}
	sh.appendMu.Unlock()
	for _, r := range batch {
		if r != req {
			close(r.done)
		}
	}
	if err == nil {
		sh.wake()
	}
	return req.first, req.err
}

// iteratorTypes are the shard iterator types of GetShardIterator.
var iteratorTypes = []string{"AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"}

// position resolves a starting position (GetShardIterator and SubscribeToShard) to a storage index.
// The caller holds st.mu.
func (e *engine) position(st *streamState, sh *shardState, typ string, seq *string, ts *epochTime, op string) (uint64, *APIError) {
	name := st.meta.Name
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if seq == nil {
			return 0, errInvalidArg("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and no StartingSequenceNumber.", typ)
		}
		sn, err := parseSeqNum(*seq)
		if err != nil {
			return 0, errInvalidArg("StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid.", *seq, op, sh.id, name, e.cfg.AccountID)
		}
		if int(sn.shard) != sh.meta.Index {
			return 0, errInvalidArg("Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", shardName(int(sn.shard)), sh.id)
		}
		if sn.created != sh.meta.Created.Unix() {
			return 0, errInvalidArg("StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid because it did not come from this stream.", *seq, op, sh.id, name, e.cfg.AccountID)
		}
		if typ == "AT_SEQUENCE_NUMBER" {
			if sn.seqIx == 0 {
				return 0, nil
			}
			return sn.seqIx - 1, nil
		}
		return sn.seqIx, nil
	case "TRIM_HORIZON", "LATEST":
		if seq != nil {
			return 0, errInvalidArg("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and also a StartingSequenceNumber.", typ)
		}
		if typ == "TRIM_HORIZON" {
			return e.horizon(sh, e.retention(st.meta))
		}
		if !sh.meta.Closed.IsZero() {
			return sh.meta.EndIndex, nil
		}
		return sh.log.Next(), nil
	case "AT_TIMESTAMP":
		if ts == nil {
			return 0, errInvalidArg("Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		now := e.now()
		if ts.After(now) {
			return 0, errInvalidArg("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d", ts.UnixMilli(), now.UnixMilli())
		}
		ix, err := sh.log.SeekTime(ts.Time)
		if err != nil {
			return 0, errInternal(err)
		}
		return ix, nil
	}
	return 0, errInvalidArg("Unknown shard iterator type %s.", typ)
}

func (e *engine) getShardIterator(in *getShardIteratorInput) (any, *APIError) {
	var v validationErrors
	v.str("shardId", in.ShardId, true, 1, 128, shardIDPatternRe, shardIDPattern)
	v.enum("shardIteratorType", in.ShardIteratorType, true, iteratorTypes...)
	v.str("startingSequenceNumber", in.StartingSequenceNumber, false, 0, 0, seqNumPatternRe, seqNumPattern)
	v.ref(in.streamRef)
	if err := v.err(); err != nil {
		return nil, err
	}
	// The service parses the shard id before it looks the stream up, and names the shard rather than
	// the stream when either is missing.
	ix, ok := parseShardID(*in.ShardId)
	if !ok && (in.StreamName != nil || in.StreamARN != nil) {
		return nil, errNotFound("Could not find shard %s in stream %s under account %s.", *in.ShardId, refName(in.streamRef), e.cfg.AccountID)
	}
	shardMissing := func(stream string) *APIError {
		return errNotFound("Shard %s in stream %s under account %s does not exist", shardName(ix), stream, e.cfg.AccountID)
	}
	st, aerr := e.resolve(in.streamRef)
	if aerr != nil {
		if aerr.Type == ErrResourceNotFound && (in.StreamName != nil || in.StreamARN != nil) {
			return nil, shardMissing(refName(in.streamRef))
		}
		return nil, aerr
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if !ok {
		return nil, errNotFound("Could not find shard %s in stream %s under account %s.", *in.ShardId, st.meta.Name, e.cfg.AccountID)
	}
	sh := st.shards[ix]
	if sh == nil || e.readable(st) != nil {
		return nil, shardMissing(st.meta.Name)
	}
	if !e.cfg.DisableThrottling {
		now := e.now()
		sh.limMu.Lock()
		ok := sh.iterCalls.has(now, 1)
		if ok {
			sh.iterCalls.take(1)
		}
		sh.limMu.Unlock()
		if !ok {
			return nil, apiErr(ErrThroughputExceeded, http.StatusBadRequest,
				"Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.meta.Name, e.cfg.AccountID)
		}
	}
	pos, aerr := e.position(st, sh, *in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp, "GetShardIterator")
	if aerr != nil {
		return nil, aerr
	}
	tok := e.encodeIterator(iteratorToken{stream: st.meta.Name, created: st.meta.Created.UnixNano(),
		shard: sh.meta.Index, pos: pos, issued: e.now()})
	return &getShardIteratorOutput{ShardIterator: tok}, nil
}

// javaTime renders t like java.util.Date#toString in UTC, as the service's iterator messages do.
func javaTime(t time.Time) string { return t.UTC().Format("Mon Jan 02 15:04:05 MST 2006") }

func (e *engine) getRecords(in *getRecordsInput) (any, *APIError) {
	var v validationErrors
	v.integer("limit", in.Limit, false, 1, e.cfg.Limits.MaxGetRecordsRecords)
	v.str("shardIterator", in.ShardIterator, true, 1, 512, nil, "")
	v.str("streamARN", in.StreamARN, false, 1, 2048, streamARNPatternRe, streamARNPattern)
	if err := v.err(); err != nil {
		return nil, err
	}
	it, err := e.decodeIterator(*in.ShardIterator)
	if err != nil {
		return nil, errInvalidArg("Invalid ShardIterator.")
	}
	now := e.now()
	if now.Sub(it.issued) > e.cfg.IteratorTTL {
		return nil, apiErr(ErrExpiredIterator, http.StatusBadRequest,
			"Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			javaTime(it.issued), javaTime(now), e.cfg.IteratorTTL.Milliseconds())
	}
	if in.StreamARN != nil {
		if a, ok := parseStreamARN(*in.StreamARN); !ok || a.name != it.stream {
			return nil, errInvalidArg("StreamARN %s does not match the stream of the shard iterator.", *in.StreamARN)
		}
	}
	shardMissing := errNotFound("Shard %s in stream %s under account %s does not exist", shardName(it.shard), it.stream, e.cfg.AccountID)
	e.mu.RLock()
	st := e.streams[it.stream]
	e.mu.RUnlock()
	if st == nil {
		return nil, shardMissing
	}
	st.mu.RLock()
	if st.meta.Created.UnixNano() != it.created || e.readable(st) != nil {
		st.mu.RUnlock()
		return nil, shardMissing
	}
	sh := st.shards[it.shard]
	if sh == nil {
		st.mu.RUnlock()
		return nil, shardMissing
	}
	closed := !sh.meta.Closed.IsZero()
	endIndex := sh.meta.EndIndex
	var children []childShard
	if closed {
		children = st.childShards(sh)
	}
	name := st.meta.Name
	enc := st.meta.Encryption
	retention := e.retention(st.meta)
	st.mu.RUnlock()

	if !e.cfg.DisableThrottling {
		sh.limMu.Lock()
		ok := sh.readCalls.has(now, 1) && sh.readBytes.positive(now)
		if ok {
			sh.readCalls.take(1)
		}
		sh.limMu.Unlock()
		if !ok {
			e.metrics.throttled(name, "read")
			return nil, apiErr(ErrThroughputExceeded, http.StatusBadRequest, "Rate exceeded for Shard - %s/%s/%s", e.cfg.AccountID, name, sh.id)
		}
	}
	limit := e.cfg.Limits.MaxGetRecordsRecords
	if in.Limit != nil {
		limit = *in.Limit
	}
	pos := it.pos
	if closed && pos > endIndex {
		pos = endIndex
	}
	if h, aerr := e.horizon(sh, retention); aerr != nil {
		return nil, aerr
	} else if pos < h {
		pos = h
	}
	var recs []storage.Record
	if !closed || pos < endIndex {
		recs, err = sh.log.Read(pos, limit, e.cfg.Limits.MaxGetRecordsBytes)
		if err != nil {
			return nil, errInternal(err)
		}
	}
	if closed {
		for len(recs) > 0 && recs[len(recs)-1].Index >= endIndex {
			recs = recs[:len(recs)-1]
		}
	}
	out := &getRecordsOutput{Records: make([]recordOut, len(recs))}
	size := 0
	for i, r := range recs {
		out.Records[i] = recordOut{SequenceNumber: sh.seq(r.Index + 1).String(), ApproximateArrivalTimestamp: epochTime{r.Arrival},
			Data: r.Data, PartitionKey: r.PartitionKey}
		if enc == "KMS" {
			out.Records[i].EncryptionType = "KMS"
		}
		size += r.Size()
		pos = r.Index + 1
	}
	if !e.cfg.DisableThrottling && size > 0 {
		sh.limMu.Lock()
		sh.readBytes.take(float64(size))
		sh.limMu.Unlock()
	}
	e.metrics.get(name, len(recs), size)
	if closed && pos >= endIndex {
		out.ChildShards = children
		if out.ChildShards == nil {
			out.ChildShards = []childShard{}
		}
	} else {
		next := e.encodeIterator(iteratorToken{stream: it.stream, created: it.created, shard: it.shard, pos: pos, issued: now})
		out.NextShardIterator = &next
		out.MillisBehindLatest = e.behind(sh, pos, now)
	}
	return out, nil
}

// horizon is the storage index of the oldest record of sh still within the retention period. The
// backend may keep older records until it can drop a whole segment; they are never returned.
func (e *engine) horizon(sh *shardState, retention time.Duration) (uint64, *APIError) {
	ix, err := sh.log.SeekTime(e.now().Add(-retention))
	if err != nil {
		return 0, errInternal(err)
	}
	return max(ix, sh.log.First()), nil
}

// behind is how far (in milliseconds) the record at pos is behind the tip of sh: zero when pos is the
// tip, else the age of the record at pos.
func (e *engine) behind(sh *shardState, pos uint64, now time.Time) int64 {
	if pos >= sh.log.Next() {
		return 0
	}
	recs, err := sh.log.Read(pos, 1, 0)
	if err != nil || len(recs) == 0 {
		return 0
	}
	d := now.Sub(recs[0].Arrival).Milliseconds()
	if d < 0 {
		return 0
	}
	return d
}
