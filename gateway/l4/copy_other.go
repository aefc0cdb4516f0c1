//go:build !linux

package l4

// setup leaves h.raw nil: without Linux's SIOCINQ every direction uses the buffered copy.
func (h *half) setup() {}

func (h *half) wait() (int64, error) { panic("l4: wait without readiness support") }
