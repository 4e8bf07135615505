// Package servetest holds helpers the services' tests share.
package servetest

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
