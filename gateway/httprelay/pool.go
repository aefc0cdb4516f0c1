package httprelay

import "sync"

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// bufferPool lends 32 KiB copy buffers to the reverse proxy.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *(bufs.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { bufs.Put(&b) }
