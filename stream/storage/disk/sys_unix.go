//go:build unix

package disk

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, failing at once if another open file holds it.
// The kernel releases it when the process dies.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
