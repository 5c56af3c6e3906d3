package profiles

import (
	"fmt"
	"strings"
	"testing"

	goldenfile "github.com/hardened-dev/hardened/internal/golden"
)

// TestPodSecurityDocumented: docs/pod-security.md's table is generated from
// the built-in profiles (go test ./profiles -run TestPodSecurityDocumented
// -update), so it says what they do.
func TestPodSecurityDocumented(t *testing.T) {
	set := Builtin()
	names := []string{"baseline", "hardened", "restricted", "strict"}
	rows := map[string][]PSAControl{}
	for _, n := range names {
		p, err := set.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		rows[n] = PodSecurity(p)
	}
	var b strings.Builder
	b.WriteString(podSecurityIntro)
	b.WriteString("| level | control | " + strings.Join(names, " | ") + " |\n|---|---|" + strings.Repeat("---|", len(names)) + "\n")
	for i, c := range rows["baseline"] {
		fmt.Fprintf(&b, "| %s | %s |", c.Level, c.Control)
		for _, n := range names {
			r := rows[n][i]
			fmt.Fprintf(&b, " **%s**: %s |", r.Status, r.Detail)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nBeyond Pod Security:\n\n")
	for _, n := range names {
		p, _ := set.Get(n)
		fmt.Fprintf(&b, "- `%s`: %s.\n", n, strings.Join(BeyondPodSecurity(p), "; "))
	}
	b.WriteString(podSecurityNames)
	goldenfile.Check(t, "../docs/pod-security.md", []byte(b.String()), *update)
}

// TestPodSecurityFollowsTheProfile: the mapping reads the profile, so an
// operator profile that opens something reads "not enforced".
func TestPodSecurityFollowsTheProfile(t *testing.T) {
	p, err := Builtin().Get("restricted")
	if err != nil {
		t.Fatal(err)
	}
	p.Capabilities.Allowed = append(p.Capabilities.Allowed, "CAP_NET_ADMIN")
	p.Process.RunAsNonRoot = true
	for _, c := range PodSecurity(p) {
		switch {
		case c.Control == "Capabilities" && (c.Status != PSANotEnforced || !strings.Contains(c.Detail, "CAP_NET_ADMIN")):
			t.Errorf("%s %s: %s %s", c.Level, c.Control, c.Status, c.Detail)
		case strings.HasPrefix(c.Control, "Running as Non-root") && c.Status != PSAEnforced:
			t.Errorf("%s: %s", c.Control, c.Status)
		}
	}
}

const podSecurityIntro = `# The profiles and Pod Security

Generated from the built-in profiles by ` + "`profiles.PodSecurity`" + `
(` + "`go test ./profiles -run TestPodSecurityDocumented -update`" + `);
` + "`hardenctl profiles show NAME`" + ` prints the same for any profile, an
operator's included.

Kubernetes' Pod Security Standards name the controls a pod must meet, and
the Pod Security Admission refuses a pod that does not meet its namespace's
level. hardened works at the runtime, after admission: for each control a
profile either refuses what the pod asks for (**enforced**, or
**stricter** when it does more than the control asks), runs the
container without it (**made safe**: the spec is rewritten, the pod is
not refused), enforces it with an exception (**partly**), or lets it
through (**not enforced**). Pod Security Admission and hardened work
together: admission refuses at the API server, with the pod author's
manifest in hand; hardened rewrites and refuses on the node, whatever
reached the runtime (NRI plugins and CDI specs included).

`

const podSecurityNames = `
## The names: a decision

Pod Security's words mean a floor. Decision: a Pod Security word never
means less here than in Pod Security (where hardened does more, it keeps
the word). Realigned before the first release:

- ` + "`baseline`" + ` (done) refuses the node's network, pid and ipc
  namespaces and allows only Kubernetes' safe sysctls, as Pod Security's
  baseline. Workloads that need the node's namespaces are node agents;
  they belong on the stock runtime class, with Pod Security's privileged
  level. An operator profile can still allow them
  (` + "`namespaces.deny_host = false`" + `, ` + "`sysctls.restrict = false`" + `), ranked
  below ` + "`baseline`" + `.
- ` + "`restricted`" + ` refuses uid 0, as Pod Security's restricted. The
  node's default, which runs images that start as root (with no
  capabilities and a read-only rootfs), is ` + "`hardened`" + `, a word Pod Security
  does not use, ranked between ` + "`baseline`" + ` and ` + "`restricted`" + `.

## strict, exec probes and lifecycle hooks

` + "`strict`" + ` refuses every exec into the container (` + "`process.deny_exec`" + `):
that includes the kubelet's exec probes (` + "`livenessProbe.exec`" + `,
` + "`readinessProbe.exec`" + `, ` + "`startupProbe.exec`" + `) and exec lifecycle hooks
(` + "`postStart`" + `/` + "`preStop`" + ` ` + "`exec`" + `), which fail under it, and
` + "`kubectl exec`" + `. Use HTTP, TCP or gRPC probes and ` + "`httpGet`" + ` or
` + "`sleep`" + ` hooks instead, or an operator profile extending ` + "`strict`" + ` with
` + "`deny_exec = false`" + ` (ranked below it: allowing exec is looser).
`
