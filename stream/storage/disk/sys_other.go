//go:build !unix

package disk

import "os"

// lockFile is a no-op where advisory locks are not available.
func lockFile(*os.File) error { return nil }

// datasync flushes f's data and the metadata needed to read it back.
func datasync(f *os.File) error { return f.Sync() }
