package shim

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestMemReleaserOncePerBurst(t *testing.T) {
	var calls atomic.Int32
	m := &memReleaser{delay: 50 * time.Millisecond, free: func() { calls.Add(1) }}

	// A burst: each Create pushes the collection back.
	for range 5 {
		m.created()
		time.Sleep(10 * time.Millisecond)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("collected %d times during the burst", n)
	}
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("collected %d times after the burst, want 1", n)
	}

	// The next burst collects again.
	m.created()
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("collected %d times after the second burst, want 2", n)
	}

	var nilReleaser *memReleaser
	nilReleaser.created() // a Service built without NewService
}
