package shim

import (
	"runtime/debug"
	"sync"
	"time"
)

// A Create's memory: collected after the burst, not during it.
//
// A Create allocates about twice what the stock shim allocates in its whole
// life (2.5 MB against 1.2 MB: the spec decoded and encoded, the policy and
// profiles parsed, the seccomp filter generated and compiled, the label
// lookup's messages), nearly all of it garbage once the container is
// created. Under the GC target containerd's shim sets (GOGC=40) on a heap
// of a few MB, that is several collections inside the Create, on the path
// of the container's start, each with its pauses and its share of a CPU
// that containerd and runc want at that moment. So the collector is paused
// (GOGC off) from the shim's start and from each Create until the burst of
// Creates is over, under a memory limit (burstMemoryLimit, or a lower one
// the shim was given) at which it collects anyway. Once the burst is over
// (releaseDelay after the last Create, idleDelay after a start that saw
// none) the GC target is restored, and the garbage is collected and its
// pages returned at once, with the C heap's (libseccomp's): a shim spends
// its life idle after the Creates of its pod.
const (
	releaseDelay = 200 * time.Millisecond
	idleDelay    = 2 * time.Second
	// burstMemoryLimit bounds the heap while the collector is paused: a
	// Create's garbage is a few MB.
	burstMemoryLimit = 64 << 20
)

type memReleaser struct {
	delay, idle time.Duration
	// pause and resume switch the collector off and back (gcPause and
	// gcResume; tests replace them); free returns the memory.
	pause  func() func()
	free   func()
	mu     sync.Mutex
	timer  *time.Timer
	resume func() // non-nil while paused
}

func newMemReleaser() *memReleaser {
	return &memReleaser{delay: releaseDelay, idle: idleDelay, pause: gcPause, free: func() {
		debug.FreeOSMemory()
		trimCHeap()
	}}
}

// gcPause switches the collector off under burstMemoryLimit and returns
// what switches it back to the settings it found.
func gcPause() func() {
	limit := debug.SetMemoryLimit(-1)
	percent := debug.SetGCPercent(-1)
	debug.SetMemoryLimit(min(limit, burstMemoryLimit))
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// started notes the shim's start, which reads its first Create ahead: the
// collector is paused until that Create's burst is over, or idleDelay.
func (m *memReleaser) started() {
	if m != nil {
		m.begin(m.idle)
	}
}

// creating notes a Create about to run.
func (m *memReleaser) creating() {
	if m != nil {
		m.begin(m.idle)
	}
}

// created notes a finished Create: the burst is over releaseDelay after
// the last one.
func (m *memReleaser) created() {
	if m != nil {
		m.arm(m.delay)
	}
}

func (m *memReleaser) begin(d time.Duration) {
	m.mu.Lock()
	if m.resume == nil && m.pause != nil {
		m.resume = m.pause()
	}
	m.mu.Unlock()
	m.arm(d)
}

func (m *memReleaser) arm(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil {
		m.timer = time.AfterFunc(d, m.release)
		return
	}
	m.timer.Reset(d)
}

// release ends the burst: the collector's settings back, then the memory
// returned.
func (m *memReleaser) release() {
	m.mu.Lock()
	resume := m.resume
	m.resume = nil
	m.mu.Unlock()
	if resume != nil {
		resume()
	}
	m.free()
}
