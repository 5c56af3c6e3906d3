package shim

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-dev/hardened/internal/reports"
)

// fakePublisher records what the shim publishes.
type fakePublisher struct {
	mu  sync.Mutex
	got []published
}

type published struct {
	topic  string
	fields map[string]string
}

func (f *fakePublisher) Publish(_ context.Context, topic string, ev events.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, published{topic, EventFields(ev)})
	return nil
}

// wait returns the first event on topic, waiting for the asynchronous
// publication of a created container's.
func (f *fakePublisher) wait(t *testing.T, topic string) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		for _, p := range f.got {
			if p.topic == topic {
				f.mu.Unlock()
				return p.fields
			}
		}
		f.mu.Unlock()
	}
	t.Fatalf("no %s event (got %+v)", topic, f.got)
	return nil
}

func TestEventsPublished(t *testing.T) {
	ts := newTestService(t, nil)
	pub := &fakePublisher{}
	ts.events = pub

	// Hardened.
	s := defaultSpec(t, "c1", oci.WithProcessArgs("/bin/sh"))
	if _, err := ts.create(t, "c1", ts.bundle(t, "c1", s), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	ev := pub.wait(t, TopicHardened)
	if ev["container_id"] != "c1" || ev["profile"] != "hardened" || ev["runtime"] != "runc" || ev["mode"] != "enforce" || ev["changes"] == "0" {
		t.Errorf("hardened event %v", ev)
	}

	// Refused: the rule and the input that caused it.
	nope := oci.WithAnnotations(map[string]string{"hardened.dev/profile": "nope"})
	s = defaultSpec(t, "c2", oci.WithProcessArgs("/bin/sh"), nope)
	if _, err := ts.create(t, "c2", ts.bundle(t, "c2", s), policyOpts(t, testPolicy("enforce", ""))); err == nil {
		t.Fatal("a container asking for an unknown profile was created")
	}
	ev = pub.wait(t, TopicRefused)
	if ev["container_id"] != "c2" || ev["rule"] != "profile" || ev["field"] != `annotation hardened.dev/profile="nope"` || ev["reason"] == "" || ev["message"] == "" {
		t.Errorf("refused event %v", ev)
	}

	// Audited: what enforce would have refused.
	s = defaultSpec(t, "c3", oci.WithProcessArgs("/bin/sh"), nope)
	if _, err := ts.create(t, "c3", ts.bundle(t, "c3", s), policyOpts(t, testPolicy("audit", ""))); err != nil {
		t.Fatal(err)
	}
	ev = pub.wait(t, TopicAudited)
	if ev["container_id"] != "c3" || ev["mode"] != "audit" || ev["reason"] == "" {
		t.Errorf("audited event %v", ev)
	}

	// Enforced under baseline, hardened audited alongside.
	pub.mu.Lock()
	pub.got = nil
	pub.mu.Unlock()
	s = defaultSpec(t, "c4", oci.WithProcessArgs("/bin/sh"))
	if _, err := ts.create(t, "c4", ts.bundle(t, "c4", s), policyOpts(t, "default_profile = \"baseline\"\naudit_profile = \"hardened\"\n"+testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	ev = pub.wait(t, TopicHardened)
	if ev["profile"] != "baseline" || ev["audit_profile"] != "hardened" || ev["audit_changes"] == "0" {
		t.Errorf("hardened event with an audit %v", ev)
	}
}

// A created container's report and a refused one's refusal are kept under
// the reports directory.
func TestReportsKept(t *testing.T) {
	ts := newTestService(t, nil)
	s := defaultSpec(t, "c1", oci.WithProcessArgs("/bin/sh"))
	if _, err := ts.create(t, "c1", ts.bundle(t, "c1", s), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	s = defaultSpec(t, "c2", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(map[string]string{"hardened.dev/profile": "nope"}))
	if _, err := ts.create(t, "c2", ts.bundle(t, "c2", s), policyOpts(t, testPolicy("enforce", ""))); err == nil {
		t.Fatal("created")
	}
	ts.background.Wait()
	if r, err := reports.Read(ts.reportsDir, "test", "c1"); err != nil || r.Profile != "hardened" || len(r.Changes) == 0 {
		t.Errorf("c1: %+v %v", r, err)
	}
	if r, err := reports.Read(ts.reportsDir, "test", "c2"); err != nil || !strings.Contains(r.Refused, "nope") {
		t.Errorf("c2: %+v %v", r, err)
	}
}
