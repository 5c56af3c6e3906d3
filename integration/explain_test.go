//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-dev/hardened/integration/harness"
)

// TestExplainEqualsShim: for the same inputs, the config.json and
// hardening-report.json the shim writes are what `hardenctl explain`
// prints (both call package decide): on runc, on gVisor with an image
// label, in audit mode, and for a refusal (the same message). explain gets
// what the shim reads from containerd as flags: the stored spec, the
// container's labels, the image config's labels, its id and namespace, the
// policy, the shim's run directory (in containerd's mount namespace).
func TestExplainEqualsShim(t *testing.T) {
	if suite.bins.CLI == "" {
		t.Fatal("hardenctl was not built")
	}
	e := newEnv(t)
	audit := e.policy("mode = \"audit\"\n")
	for _, tc := range []struct {
		name, image, policy string
		annotations         map[string]string
	}{
		{name: "runc", image: harness.ImageBusybox},
		{name: "gvisor", image: harness.ImageStrict},
		{name: "audit", image: harness.ImageBusybox, policy: audit, annotations: map[string]string{harness.AnnotationRuntime: "gvisor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.id("explain-" + tc.name)
			c := e.start(harness.Spec{ID: id, Image: tc.image, Runtime: harness.Hardened(tc.policy), Annotations: tc.annotations,
				Args: sh("echo READY; exec sleep 600")})
			if err := c.WaitOutput(e.ctx, "READY", readyTimeout); err != nil {
				t.Fatal(err)
			}
			shimSpec, err := os.ReadFile(filepath.Join(e.d.Bundle(e.ns, id), "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			shimReport, err := os.ReadFile(e.d.ReportPath(e.ns, id))
			if err != nil {
				t.Fatal(err)
			}
			code, out, stderr, report := explainLike(t, e, c, tc.policy)
			if code != 0 {
				t.Fatalf("explain exit %d (the shim ran the container): %s", code, stderr)
			}
			rep := e.readReport(id)
			t.Logf("the shim: profile %s on %s (%s), mode %s, %d changes; explain: %s", rep.Profile, rep.Runtime, rep.keys["binary"], rep.Mode, len(rep.Changes), strings.SplitN(stderr, "\n", 2)[0])
			jsonEqual(t, "config.json", shimSpec, []byte(out))
			jsonEqual(t, "hardening-report.json", shimReport, report)
		})
	}

	t.Run("refused", func(t *testing.T) {
		vol := filepath.Join(e.d.Dir, "vol")
		if err := os.Mkdir(vol, 0o755); err != nil {
			t.Fatal(err)
		}
		s := harness.Spec{ID: e.id("explain-refused"), Runtime: harness.Hardened(""), Args: []string{"true"},
			SpecOpts: []oci.SpecOpts{hostBind(vol, "rbind", "rw")}}
		c, err := e.d.Create(e.ctx, e.ns, s)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Delete(context.Background())
		startErr := c.Start(e.ctx)
		if startErr == nil {
			t.Fatal("the shim ran a writable host bind without consent")
		}
		code, out, stderr, _ := explainLike(t, e, c, "")
		msg := strings.TrimSpace(strings.TrimPrefix(stderr, "hardenctl: "))
		if code != 3 || out != "" || !strings.HasPrefix(msg, "hardened: ") { // 3: refused
			t.Fatalf("explain: exit %d, stdout %q, stderr %q; want the refusal", code, out, stderr)
		}
		if !strings.Contains(startErr.Error(), msg) {
			t.Errorf("explain refuses with\n  %s\nthe shim with\n  %v", msg, startErr)
		}
	})
}

// explainLike runs hardenctl explain on c's stored spec with what the
// shim reads from containerd for it; it returns the exit code, stdout,
// stderr and the report explain wrote.
func explainLike(t *testing.T, e *env, c *harness.Container, policy string) (int, string, string, []byte) {
	t.Helper()
	ctx := harness.Context(e.ctx, e.ns)
	spec := storedSpec(t, e, c)
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specFile, reportFile := filepath.Join(dir, "spec.json"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(specFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"explain", "--container-id", c.ID, "--namespace", e.ns,
		"--run-dir", "/run/containerd-hardened", "--report", reportFile}
	if policy != "" {
		args = append(args, "--policy", policy)
	}
	labels, err := c.C.Labels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	img, err := c.C.Image(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ispec, err := img.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ispec.Config.Labels {
		args = append(args, "--image-label", k+"="+v)
	}
	cmd := exec.Command(suite.bins.CLI, append(args, specFile)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("hardenctl: %v", err)
	}
	report, _ := os.ReadFile(reportFile)
	return code, out.String(), errOut.String(), report
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, what string, shim, explain []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(shim, &a); err != nil {
		t.Fatalf("the shim's %s: %v", what, err)
	}
	if err := json.Unmarshal(explain, &b); err != nil {
		t.Fatalf("explain's %s: %v\n%s", what, err, explain)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s differs between the shim and explain:\n--- shim ---\n%s\n--- explain ---\n%s", what, shim, explain)
	}
}
