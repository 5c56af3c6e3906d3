package shim

import (
	"runtime/debug"
	"sync"
	"time"
)

// Returning a Create's memory.
//
// A Create allocates about twice what the stock shim allocates in its whole
// life (2.5 MB against 1.2 MB: the spec decoded and encoded, the policy and
// profiles parsed, the seccomp filter generated and compiled, the label
// lookup's messages), nearly all of it garbage once the container is
// created. Under the GC target containerd's shim sets (GOGC=40) it stays in
// the heap until a later collection, and the pages freed then stay resident
// until the scavenger or pkg/shim's FreeOSMemory tick (every 30 s) returns
// them. A shim spends its life idle after the Creates of its pod, so once a
// burst of Creates is over it collects and returns those pages at once:
// about 0.5 MB of private memory less for an idle shim.
//
// The collection waits releaseDelay after the last Create, so it does not
// compete with the Start containerd sends right after a Create.
const releaseDelay = 200 * time.Millisecond

type memReleaser struct {
	delay time.Duration
	free  func()

	mu    sync.Mutex
	timer *time.Timer
}

func newMemReleaser() *memReleaser {
	return &memReleaser{delay: releaseDelay, free: debug.FreeOSMemory}
}

// created notes a finished Create: the memory is returned delay after the
// last one.
func (m *memReleaser) created() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil {
		m.timer = time.AfterFunc(m.delay, m.free)
		return
	}
	m.timer.Reset(m.delay)
}
