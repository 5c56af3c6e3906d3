//go:build integration

package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/profiles"
)

// appFiles are what an nginx-like image holds where its program writes:
// state it reads back and a log directory.
var appFiles = map[string]string{"var/lib/app/state": "seed\n", "var/log/app/.keep": ""}

// appScript reads the image's state, writes state and a log line where
// the image's program would, then tries to write elsewhere on the rootfs.
const appScript = `cat /var/lib/app/state && echo new > /var/lib/app/state2 && echo line >> /var/log/app/app.log && echo wrote; ` +
	`touch /var/elsewhere 2>&1; grep -E ' /var/(lib|log)/app ' /proc/mounts`

// TestScratchDeclaredByImageLabel: an image declaring its scratch
// directories (label hardened.dev/scratch) runs under hardened's
// read-only rootfs with no change to its manifest: each directory is a
// sized tmpfs holding the image's content (tmpcopyup), the rest of the
// rootfs stays read-only; the same image without the label cannot write;
// a label naming a directory outside the allowed roots refuses the
// container.
func TestScratchDeclaredByImageLabel(t *testing.T) {
	e := newEnv(t)
	const labelled, plain, bad = "hardened.test/app-scratch:1", "hardened.test/app:1", "hardened.test/app-bad:1"
	if err := e.d.ImportImages(e.ctx, e.ns, []harness.ImageSpec{
		{Name: labelled, Cmd: []string{"/bin/sh"}, Files: appFiles, Labels: map[string]string{profiles.ScratchLabel: "/var/lib/app,/var/log/app:8m"}},
		{Name: plain, Cmd: []string{"/bin/sh"}, Files: appFiles},
		{Name: bad, Cmd: []string{"/bin/sh"}, Files: appFiles, Labels: map[string]string{profiles.ScratchLabel: "/usr/lib/app"}},
	}); err != nil {
		t.Fatal(err)
	}
	res := e.run(harness.Spec{ID: e.id("scratch"), Image: labelled, Runtime: harness.Hardened(""), Args: sh(appScript)})
	t.Logf("with the label:\n%s", res.Output())
	for _, want := range []string{"seed", "wrote", "Read-only file system",
		"tmpfs /var/lib/app tmpfs rw,nosuid,nodev", "size=16384k", "tmpfs /var/log/app tmpfs rw,nosuid,nodev", "size=8192k"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("with the label: the output does not show %q", want)
		}
	}
	res = e.run(harness.Spec{ID: e.id("no-scratch"), Image: plain, Runtime: harness.Hardened(""), Args: sh(appScript)})
	if strings.Contains(res.Stdout, "wrote") || !strings.Contains(res.Stdout+res.Stderr, "Read-only file system") {
		t.Errorf("without the label the program wrote under hardened:\n%s", res.Output())
	}
	err := e.startRefused(harness.Spec{ID: e.id("bad-scratch"), Image: bad, Runtime: harness.Hardened(""), Args: sh("true")})
	errContainsAll(t, "a label declaring /usr/lib/app", err, "hardened.dev/scratch", "/usr/lib/app", "not under /var")
}

// TestScratchOnGVisor: on the gVisor route the declared directories are
// writable tmpfs mounts too, but they start empty (runsc ignores
// tmpcopyup), and the report says so.
func TestScratchOnGVisor(t *testing.T) {
	e := newEnv(t)
	const labelled = "hardened.test/app-scratch:1"
	if err := e.d.ImportImages(e.ctx, e.ns, []harness.ImageSpec{
		{Name: labelled, Cmd: []string{"/bin/sh"}, Files: appFiles, Labels: map[string]string{profiles.ScratchLabel: "/var/lib/app,/var/log/app:8m"}},
	}); err != nil {
		t.Fatal(err)
	}
	id := e.id("scratch-gvisor")
	res := e.run(harness.Spec{ID: id, Image: labelled, Runtime: harness.Hardened(""),
		Args:        sh(`ls -A /var/lib/app; echo new > /var/lib/app/state2 && echo line >> /var/log/app/app.log && echo wrote; touch /var/elsewhere 2>&1`),
		Annotations: map[string]string{harness.AnnotationRuntime: "gvisor"}})
	t.Logf("on gVisor:\n%s", res.Output())
	if strings.Contains(res.Stdout, "state") && !strings.Contains(res.Stdout, "state2") || !strings.Contains(res.Stdout, "wrote") || !strings.Contains(res.Stdout, "Read-only file system") {
		t.Errorf("on gVisor: want empty, writable scratch directories and a read-only rootfs:\n%s", res.Output())
	}
	r := e.keptReport(id)
	gap := false
	for _, g := range r.NotEnforced {
		gap = gap || strings.Contains(g.Reason, "scratch /var/lib/app starts empty")
	}
	if !gap {
		t.Errorf("the report does not say the scratch starts empty on gVisor: %+v", r.NotEnforced)
	}
}

// TestAuditReportsWrittenPaths: enforced under baseline (writable rootfs)
// and audited under hardened, a container's report names where it wrote
// that hardened would have made read-only (not /tmp, hardened's
// scratch), read from its snapshot when it is deleted; hardenctl report
// suggests the label; once the image declares them, nothing is left.
func TestAuditReportsWrittenPaths(t *testing.T) {
	e := newEnv(t)
	const plain, labelled = "hardened.test/app:1", "hardened.test/app-scratch:1"
	if err := e.d.ImportImages(e.ctx, e.ns, []harness.ImageSpec{
		{Name: plain, Cmd: []string{"/bin/sh"}, Files: appFiles},
		{Name: labelled, Cmd: []string{"/bin/sh"}, Files: appFiles, Labels: map[string]string{profiles.ScratchLabel: "/var/lib/app,/var/log/app"}},
	}); err != nil {
		t.Fatal(err)
	}
	pol := e.policy("default_profile = \"baseline\"\naudit_profile = \"hardened\"\n")
	script := `echo new > /var/lib/app/state2 && echo line >> /var/log/app/app.log && echo x > /tmp/t && echo ok`
	id := e.id("written")
	if res := e.run(harness.Spec{ID: id, Image: plain, Runtime: harness.Hardened(pol), Args: sh(script)}); !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("under baseline:\n%s", res.Output())
	}
	r := e.keptReport(id)
	if r.Written == nil || r.Written.Profile != "hardened" || strings.Join(r.Written.Paths, ",") != "/var/lib/app,/var/log/app" {
		t.Errorf("written %+v: want /var/lib/app and /var/log/app under hardened", r.Written)
	}
	out, err := exec.Command(suite.bins.CLI, "report", "--dir", e.d.ReportsDir(), id).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `hardened.dev/scratch="/var/lib/app,/var/log/app"`) {
		t.Errorf("hardenctl report: %v\n%s", err, out)
	}
	id = e.id("written-declared")
	e.run(harness.Spec{ID: id, Image: labelled, Runtime: harness.Hardened(pol), Args: sh(script)})
	if r := e.keptReport(id); r.Written == nil || len(r.Written.Paths) != 0 || r.Written.Unavailable != "" {
		t.Errorf("with the directories declared, written %+v: want nothing", r.Written)
	}
}
