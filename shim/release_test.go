package shim

import (
	"runtime/debug"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The releaser's timers run on testing/synctest's fake clock: each Sleep
// returns once every timer due by then has fired and its callback is done.
func TestMemReleaserOncePerBurst(t *testing.T) {
	synctest.Test(t, memReleaserOncePerBurst)
}

func memReleaserOncePerBurst(t *testing.T) {
	var paused, resumed, freed atomic.Int32
	m := &memReleaser{delay: 50 * time.Millisecond, idle: time.Second,
		pause: func() func() {
			paused.Add(1)
			return func() { resumed.Add(1) }
		},
		free: func() { freed.Add(1) },
	}
	counts := func() [3]int32 { return [3]int32{paused.Load(), resumed.Load(), freed.Load()} }

	// A burst: the collector is paused once, and each Create pushes the
	// end back.
	for range 5 {
		m.creating()
		time.Sleep(5 * time.Millisecond)
		m.created()
		time.Sleep(5 * time.Millisecond)
	}
	if got := counts(); got != [3]int32{1, 0, 0} {
		t.Fatalf("during the burst: paused, resumed, freed = %v, want [1 0 0]", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got := counts(); got != [3]int32{1, 1, 1} {
		t.Fatalf("after the burst: paused, resumed, freed = %v, want [1 1 1]", got)
	}

	// The next burst pauses and returns again.
	m.creating()
	m.created()
	time.Sleep(200 * time.Millisecond)
	if got := counts(); got != [3]int32{2, 2, 2} {
		t.Fatalf("after the second burst: paused, resumed, freed = %v, want [2 2 2]", got)
	}

	var nilReleaser *memReleaser
	nilReleaser.creating() // a Service built without NewService
	nilReleaser.created()
}

func TestMemReleaserStartWithoutCreate(t *testing.T) {
	synctest.Test(t, memReleaserStartWithoutCreate)
}

func memReleaserStartWithoutCreate(t *testing.T) {
	// A shim that reads ahead but gets no Create resumes the collector
	// after idle.
	var resumed atomic.Int32
	m := &memReleaser{delay: time.Hour, idle: 50 * time.Millisecond,
		pause: func() func() { return func() { resumed.Add(1) } },
		free:  func() {},
	}
	m.started()
	time.Sleep(200 * time.Millisecond)
	if resumed.Load() != 1 {
		t.Fatal("collector still paused with no Create")
	}
}

func TestGCPauseRestoresSettings(t *testing.T) {
	before := debugSettings()
	resume := gcPause()
	if got := debugSettings(); got.percent != -1 || got.limit > burstMemoryLimit {
		t.Errorf("paused: %+v, want GOGC off under %d", got, burstMemoryLimit)
	}
	resume()
	if got := debugSettings(); got != before {
		t.Errorf("resumed: %+v, want %+v", got, before)
	}
}

type gcSettings struct {
	percent int
	limit   int64
}

func debugSettings() gcSettings {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return gcSettings{percent: p, limit: debug.SetMemoryLimit(-1)}
}
