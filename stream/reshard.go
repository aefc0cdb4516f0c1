package stream

import (
	"fmt"
	"sort"
)

// newShard creates an open shard with the given range and parents and opens its log. The caller holds
// st.mu for writing and calls rebuildOpen and persist afterwards.
func (e *engine) newShard(st *streamState, start, end hashKey, parent, adjParent int) (*shardState, error) {
	m := st.meta
	sm := &shardMeta{Index: m.NextShard, Parent: parent, AdjParent: adjParent, Start: start.String(),
		End: end.String(), Created: e.now()}
	if err := e.attachShard(st, sm); err != nil {
		return nil, err
	}
	m.NextShard++
	m.Shards = append(m.Shards, sm)
	return st.shards[sm.Index], nil
}

// closeShard closes sh for writes. Appends hold st.mu.RLock, so with st.mu held for writing no append is
// in flight and the log's Next is the shard's final end.
func (e *engine) closeShard(sh *shardState) {
	sh.meta.Closed = e.now()
	sh.meta.EndIndex = sh.log.Next()
	sh.wake()
}

// wake tells subscribers of sh that something changed.
func (sh *shardState) wake() {
	sh.notifyMu.Lock()
	close(sh.notify)
	sh.notify = make(chan struct{})
	sh.notifyMu.Unlock()
}

// changed returns a channel closed at the next append to or closing of sh.
func (sh *shardState) changed() <-chan struct{} {
	sh.notifyMu.Lock()
	defer sh.notifyMu.Unlock()
	return sh.notify
}

// split closes sh and opens two children split at hk (the second child starts at hk). The caller holds
// st.mu for writing and persists afterwards.
func (e *engine) split(st *streamState, sh *shardState, hk hashKey) (*shardState, *shardState, error) {
	if hk.cmp(sh.start) <= 0 || hk.cmp(sh.end) > 0 {
		return nil, nil, fmt.Errorf("split key %s outside shard %s", hk, sh.id)
	}
	e.closeShard(sh)
	a, err := e.newShard(st, sh.start, hk.sub1(), sh.meta.Index, -1)
	if err != nil {
		return nil, nil, err
	}
	b, err := e.newShard(st, hk, sh.end, sh.meta.Index, -1)
	if err != nil {
		return nil, nil, err
	}
	e.rebuildOpen(st)
	e.log.Info("shard split", "stream", st.meta.Name, "shard", sh.id, "children", []string{a.id, b.id})
	return a, b, nil
}

// merge closes a and b (adjacent, in either order) and opens their child. ParentShardId is a,
// AdjacentParentShardId b. The caller holds st.mu for writing and persists afterwards.
func (e *engine) merge(st *streamState, a, b *shardState) (*shardState, error) {
	lo, hi := a, b
	if b.start.cmp(a.start) < 0 {
		lo, hi = b, a
	}
	if lo.end.add1() != hi.start {
		return nil, fmt.Errorf("shards %s and %s are not adjacent", a.id, b.id)
	}
	e.closeShard(a)
	e.closeShard(b)
	c, err := e.newShard(st, lo.start, hi.end, a.meta.Index, b.meta.Index)
	if err != nil {
		return nil, err
	}
	e.rebuildOpen(st)
	e.log.Info("shards merged", "stream", st.meta.Name, "parents", []string{a.id, b.id}, "child", c.id)
	return c, nil
}

// resizeUniform reshapes the open shards into n shards of uniform ranges, as UpdateShardCount with
// UNIFORM_SCALING does: first every boundary of the target layout that is not yet a shard boundary is
// introduced by a split, then the shards inside each target range are merged pairwise from the left.
// Every step is a real split or merge, so lineage stays intact and readers that finish parents before
// children keep per-key order. The caller holds st.mu for writing and persists afterwards.
func (e *engine) resizeUniform(st *streamState, n int) error {
	targets := uniformRanges(n)
	for _, r := range targets[1:] {
		sh := st.shardFor(r[0])
		if sh == nil {
			return fmt.Errorf("no open shard holds hash key %s", r[0])
		}
		if sh.start != r[0] {
			if _, _, err := e.split(st, sh, r[0]); err != nil {
				return err
			}
		}
	}
	for _, r := range targets {
		var in []*shardState
		for _, sh := range st.open {
			if sh.start.cmp(r[0]) >= 0 && sh.end.cmp(r[1]) <= 0 {
				in = append(in, sh)
			}
		}
		sort.Slice(in, func(i, j int) bool { return in[i].start.cmp(in[j].start) < 0 })
		for len(in) > 1 {
			c, err := e.merge(st, in[0], in[1])
			if err != nil {
				return err
			}
			in = append([]*shardState{c}, in[2:]...)
		}
	}
	return nil
}

// children returns the shards created from sh by a split or merge.
func (st *streamState) children(sh *shardState) []*shardState {
	var out []*shardState
	for _, c := range st.shards {
		if c.meta.Parent == sh.meta.Index || c.meta.AdjParent == sh.meta.Index {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].meta.Index < out[j].meta.Index })
	return out
}

// childShards renders the children of sh for GetRecords and SubscribeToShard.
func (st *streamState) childShards(sh *shardState) []childShard {
	var out []childShard
	for _, c := range st.children(sh) {
		parents := []string{shardName(c.meta.Parent)}
		if c.meta.AdjParent >= 0 {
			parents = append(parents, shardName(c.meta.AdjParent))
		}
		out = append(out, childShard{ShardId: c.id, ParentShards: parents,
			HashKeyRange: hashKeyRange{c.meta.Start, c.meta.End}})
	}
	return out
}
