package stream

import (
	"math"
	"time"
)

// retentionLoop trims records past each stream's retention period and forgets closed shards whose
// every record has expired.
func (e *engine) retentionLoop() {
	t := time.NewTicker(e.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.trimAll()
		}
	}
}

// trimAll applies retention to every stream once.
func (e *engine) trimAll() {
	now := e.now()
	for _, name := range e.sortedStreamNames() {
		e.mu.RLock()
		st := e.streams[name]
		e.mu.RUnlock()
		if st == nil {
			continue
		}
		st.mu.RLock()
		if st.gone {
			st.mu.RUnlock()
			continue
		}
		cutoff := now.Add(-e.retention(st.meta))
		shards := st.sortedShards()
		var expired []*shardState
		for _, sh := range shards {
			if c := sh.meta.Closed; !c.IsZero() && c.Before(cutoff) {
				expired = append(expired, sh)
			}
		}
		st.mu.RUnlock()
		for _, sh := range shards {
			if err := sh.log.Trim(cutoff); err != nil {
				e.log.Error("retention trim", "stream", name, "shard", sh.id, "err", err)
			}
		}
		if len(expired) == 0 {
			continue
		}
		st.mu.Lock()
		for _, sh := range expired {
			delete(st.shards, sh.meta.Index)
			st.meta.Shards = slicesDeleteFunc(st.meta.Shards, func(m *shardMeta) bool { return m == sh.meta })
			e.log.Info("closed shard expired", "stream", name, "shard", sh.id)
		}
		if err := e.persist(st); err != nil {
			e.log.Error("retention persist", "stream", name, "err", err)
		}
		st.mu.Unlock()
	}
}

// autoScaleLoop evaluates ON_DEMAND streams every AutoScale.Interval.
func (e *engine) autoScaleLoop() {
	iv := e.cfg.AutoScale.Interval
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.autoScale(iv)
		}
	}
}

// autoScale splits the hot shards and merges the cold neighbours of every ACTIVE ON_DEMAND stream,
// based on the write demand (throttled attempts included) seen since the previous call, interval ago.
func (e *engine) autoScale(interval time.Duration) {
	a := e.cfg.AutoScale
	capBytes := float64(e.cfg.Limits.ShardWriteBytesPerSec) * interval.Seconds()
	capRecs := float64(e.cfg.Limits.ShardWriteRecordsPerSec) * interval.Seconds()
	for _, name := range e.sortedStreamNames() {
		e.mu.RLock()
		st := e.streams[name]
		e.mu.RUnlock()
		if st == nil {
			continue
		}
		st.mu.Lock()
		load := map[*shardState]float64{}
		for _, sh := range st.shards {
			b, r := float64(sh.demandBytes.Swap(0)), float64(sh.demandRecs.Swap(0))
			load[sh] = math.Max(b/capBytes, r/capRecs)
		}
		if st.gone || st.meta.Mode != modeOnDemand || st.meta.Status != statusActive {
			st.mu.Unlock()
			continue
		}
		changed := false
		// Split hot shards, deep enough that each child would carry about half of a shard's capacity.
		for _, sh := range append([]*shardState(nil), st.open...) {
			l := load[sh]
			if l < a.SplitThreshold {
				if l >= a.MergeThreshold {
					sh.coldRuns = 0
				} else {
					sh.coldRuns++
				}
				continue
			}
			depth := int(math.Ceil(math.Log2(l / 0.5)))
			depth = max(1, min(depth, a.MaxSplitDepth))
			if e.openShardCount()+(1<<depth)-1 > e.cfg.Limits.ShardLimit {
				e.log.Warn("on-demand split skipped: account shard limit", "stream", name, "shard", sh.id)
				continue
			}
			if err := e.splitDeep(st, sh, depth); err != nil {
				e.log.Error("on-demand split", "stream", name, "shard", sh.id, "err", err)
				continue
			}
			changed = true
		}
		// Merge cold adjacent pairs while the stream keeps its minimum (warm) capacity.
		minShards := e.warmShards(st.meta)
		for i := 0; i+1 < len(st.open) && len(st.open) > minShards; i++ {
			x, y := st.open[i], st.open[i+1]
			if x.coldRuns < a.MergeAfter || y.coldRuns < a.MergeAfter || load[x]+load[y] >= a.MergeThreshold {
				continue
			}
			if _, err := e.merge(st, x, y); err != nil {
				e.log.Error("on-demand merge", "stream", name, "err", err)
				continue
			}
			changed = true
		}
		if changed {
			if err := e.persist(st); err != nil {
				e.log.Error("on-demand persist", "stream", name, "err", err)
			}
		}
		st.mu.Unlock()
	}
}

// splitDeep halves sh at the midpoint of its range, then the halves, depth levels deep. The caller
// holds st.mu for writing.
func (e *engine) splitDeep(st *streamState, sh *shardState, depth int) error {
	if depth == 0 || sh.start == sh.end {
		return nil
	}
	a, b, err := e.split(st, sh, sh.start.mid(sh.end))
	if err != nil {
		return err
	}
	if err := e.splitDeep(st, a, depth-1); err != nil {
		return err
	}
	return e.splitDeep(st, b, depth-1)
}
