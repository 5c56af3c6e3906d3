//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/shim"
)

// TestEventsOnContainerdBus: the shim publishes a hardened, a refused and
// an audited event on containerd's event bus, in the container's
// namespace, with their fields, as a containerd client subscribed to
// /hardened/ receives them.
func TestEventsOnContainerdBus(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(harness.Context(e.ctx, e.ns))
	defer cancel()
	ch, errs := e.d.Client.EventService().Subscribe(ctx, `topic~="^/hardened/"`)
	// The subscription is live once it delivers a ping of the test's own.
	ping := &apievents.ContainerUpdate{ID: "ping"}
	for live := false; !live; {
		if err := e.d.Client.EventService().Publish(ctx, "/hardened/test/ping", ping); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			live = true
		case err := <-errs:
			t.Fatalf("subscription: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	hardenedID, refusedID, auditedID := e.id("ev-hardened"), e.id("ev-refused"), e.id("ev-audited")
	e.run(harness.Spec{ID: hardenedID, Runtime: harness.Hardened(""), Args: []string{"true"}})
	err := e.startRefused(harness.Spec{ID: refusedID, Runtime: harness.Hardened(""), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "nope"}})
	t.Logf("refused: %v", err)
	e.run(harness.Spec{ID: auditedID, Runtime: harness.Hardened(e.policy("mode = \"audit\"\n")), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "nope"}})

	want := map[string]string{hardenedID: shim.TopicHardened, refusedID: shim.TopicRefused, auditedID: shim.TopicAudited}
	got := map[string]map[string]string{}
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case env := <-ch:
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				t.Fatalf("event %s: %v", env.Topic, err)
			}
			fields := shim.EventFields(v)
			if fields == nil {
				t.Fatalf("event %s carries %T, want containerd.events.ContainerUpdate", env.Topic, v)
			}
			id := fields["container_id"]
			if topic, ok := want[id]; ok {
				if env.Topic != topic || env.Namespace != e.ns {
					t.Errorf("container %s: event %s in namespace %s, want %s in %s", id, env.Topic, env.Namespace, topic, e.ns)
				}
				got[id] = fields
				t.Logf("%s %v", env.Topic, fields)
			}
		case err := <-errs:
			t.Fatalf("subscription: %v", err)
		case <-timeout:
			t.Fatalf("events after 30s: %v, want one for each of %v", got, want)
		}
	}
	if f := got[hardenedID]; f["profile"] != "hardened" || f["runtime"] != "runc" || f["mode"] != "enforce" || f["changes"] == "0" {
		t.Errorf("hardened event %v", f)
	}
	if f := got[refusedID]; f["rule"] != "profile" || !strings.Contains(f["field"], "hardened.dev/profile") || f["reason"] == "" {
		t.Errorf("refused event %v", f)
	}
	if f := got[auditedID]; f["mode"] != "audit" || !strings.Contains(f["reason"], "nope") {
		t.Errorf("audited event %v", f)
	}
}

// TestReportOutlivesBundle: after the container is deleted (its bundle and
// hardening-report.json with it), `hardenctl report` prints the kept copy;
// a refused container's kept record is its refusal.
func TestReportOutlivesBundle(t *testing.T) {
	if suite.bins.CLI == "" {
		t.Fatal("hardenctl was not built")
	}
	e := newEnv(t)
	ran, refused := e.id("kept"), e.id("kept-refused")
	e.run(harness.Spec{ID: ran, Runtime: harness.Hardened(""), Args: []string{"true"}})
	if _, err := os.Stat(e.d.Bundle(e.ns, ran)); err == nil {
		t.Fatalf("the bundle of %s is still there", ran)
	}
	_ = e.startRefused(harness.Spec{ID: refused, Runtime: harness.Hardened(""), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "nope"}})
	report := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(suite.bins.CLI, append([]string{"report", "--dir", e.d.ReportsDir()}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("hardenctl report %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := report(ran)
	t.Logf("hardenctl report %s:\n%s", ran, out)
	for _, want := range []string{e.ns + "/" + ran, "hardened (policy default_profile)", "runc", "capabilities"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report of %s does not show %q", ran, want)
		}
	}
	if out := report(refused); !strings.Contains(out, `annotation hardened.dev/profile="nope"`) {
		t.Errorf("the report of %s does not show its refusal:\n%s", refused, out)
	}
}

// TestEnforceBaselineAuditRestricted: Pod Security's model. The policy
// enforces baseline and audits hardened: the container runs with what
// baseline gives (a writable rootfs, its capabilities), and its report,
// its event and hardenctl report say what hardened would have changed,
// with nothing of it applied; a strict audit reports its refusal and the
// container still runs.
func TestEnforceBaselineAuditRestricted(t *testing.T) {
	e := newEnv(t)
	pol := e.policy("default_profile = \"baseline\"\naudit_profile = \"hardened\"\n")
	id := e.id("audit-level")
	c := e.start(harness.Spec{ID: id, Runtime: harness.Hardened(pol), Args: sh(harness.Script(
		[2]string{"status", "cat /proc/self/status"},
		[2]string{"rootfs", "touch /written && echo ROOTFS-WRITABLE"},
	) + "echo READY; exec sleep 600")})
	if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
		t.Fatal(err)
	}
	out, _ := c.Output()
	sec := harness.Sections(out)
	if !strings.Contains(sec["rootfs"], "ROOTFS-WRITABLE") {
		t.Errorf("the rootfs is not writable: hardened's read-only rootfs was applied:\n%s", sec["rootfs"])
	}
	if capEff := hexField(t, statusOf(t, "baseline init", sec["status"]), "CapEff"); capEff == 0x400 {
		t.Errorf("CapEff %x is hardened's, want baseline's", capEff)
	}
	rep := e.readReport(id)
	var audit struct {
		Profile string            `json:"profile"`
		Changes []json.RawMessage `json:"changes"`
		Refused string            `json:"refused"`
	}
	if err := json.Unmarshal(rep.keys["audit"], &audit); err != nil || rep.Profile != "baseline" || audit.Profile != "hardened" || len(audit.Changes) == 0 || audit.Refused != "" {
		t.Fatalf("report: profile %s, audit %+v (%v)\n%s", rep.Profile, audit, err, rep.raw)
	}
	if !strings.Contains(string(rep.keys["audit"]), "root.readonly") {
		t.Errorf("the audit does not name the read-only rootfs hardened would set:\n%s", rep.keys["audit"])
	}
	kept, err := exec.Command(suite.bins.CLI, "report", "--dir", e.d.ReportsDir(), id).CombinedOutput()
	if err != nil || !strings.Contains(string(kept), "audited, not applied: profile hardened") || !strings.Contains(string(kept), "root.readonly") {
		t.Errorf("hardenctl report (%v):\n%s", err, kept)
	}

	strict := e.policy("default_profile = \"baseline\"\naudit_profile = \"strict\"\n")
	sid := e.id("audit-strict")
	e.run(harness.Spec{ID: sid, Runtime: harness.Hardened(strict), Args: []string{"true"}})
	kept, err = exec.Command(suite.bins.CLI, "report", "--dir", e.d.ReportsDir(), "-o", "json", sid).CombinedOutput()
	if err != nil || !strings.Contains(string(kept), `"refused"`) || !strings.Contains(string(kept), "strict") {
		t.Errorf("a strict audit of a root container: its refusal is not reported (%v):\n%s", err, kept)
	}
}

// TestCtrEvents: `ctr events`, the operator's first look, shows the
// shim's hardened, refused, audited and seccomp events with their fields.
func TestCtrEvents(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.d.ToolsBin+"/ctr", "--address", e.d.Address, "events")
	var out harness.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	time.Sleep(500 * time.Millisecond) // ctr subscribes
	hardenedID, refusedID, auditedID, deniedID := e.id("ctr-ev"), e.id("ctr-ev-refused"), e.id("ctr-ev-audited"), e.id("ctr-ev-denied")
	e.run(harness.Spec{ID: hardenedID, Runtime: harness.Hardened(""), Args: []string{"true"}})
	_ = e.startRefused(harness.Spec{ID: refusedID, Runtime: harness.Hardened(""), Args: []string{"true"},
		Annotations: map[string]string{harness.AnnotationProfile: "nope"}})
	e.run(harness.Spec{ID: auditedID, Runtime: harness.Hardened(e.policy("mode = \"audit\"\n")), Args: []string{"true"}})
	e.run(harness.Spec{ID: deniedID, Runtime: harness.Hardened(e.policy("default_profile = \"baseline\"\nseccomp_notify = \"report\"\n")),
		Args: sh("unshare -U true; true")})
	want := map[string]string{
		shim.TopicHardened: hardenedID, shim.TopicRefused: refusedID, shim.TopicAudited: auditedID, shim.TopicSeccomp: deniedID,
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing := []string{}
		text := out.String()
		for topic, id := range want {
			if !linesWith(text, topic, `"id":"`+id+`"`) {
				missing = append(missing, topic)
			}
		}
		if len(missing) == 0 {
			if !linesWith(text, shim.TopicSeccomp, `unshare×1 (EPERM)`) {
				t.Errorf("the seccomp event does not name unshare:\n%s", text)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctr events did not show %v:\n%s", missing, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// linesWith reports whether one line of text holds every string.
func linesWith(text string, all ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return true
		}
	}
	return false
}
