package tomlpos

import "testing"

const doc = `# comment
name = "x"
[capabilities]
allowed = [
  "CAP_CHOWN",
  "CAP_FOO",
]
[rootfs]
scratch = [
  { path = "/tmp" },
  { path = "tmp/../x", size = "1m" },
]
[[routes]]
runtime = "runc"
[[routes]]
match = { annotations = { "example.com/x" = "y" } }
runtime = "gvisor"
[routes.match.labels]
a = "b"
[seccomp]
deny.extra = "z"
`

func TestIndex(t *testing.T) {
	ix := Build([]byte(doc))
	for _, tc := range []struct {
		path, value string
		line, col   int
	}{
		{"name", "", 2, 1},
		{"name", "x", 2, 8},
		{"capabilities", "", 3, 2},
		{"capabilities.allowed", "", 4, 1},
		{"capabilities.allowed", "CAP_FOO", 6, 3},
		{"rootfs.scratch[1].path", "tmp/../x", 11, 12},
		{"rootfs.scratch[1].size", "", 11, 24},
		{"routes[0].runtime", "runc", 14, 11},
		{"routes[1].runtime", "gvisor", 17, 11},
		{"routes[1].match.annotations.example.com/x", "y", 16, 45},
		{"routes[1].match.labels.a", "b", 19, 5},
		{"seccomp.deny.extra", "z", 21, 14},
	} {
		var p Pos
		var ok bool
		if tc.value == "" {
			p, ok = ix.Key(tc.path)
		} else {
			p, ok = ix.Value(tc.path, tc.value)
		}
		if !ok || p.Line != tc.line || p.Column != tc.col {
			t.Errorf("%s=%q: got %v %v, want %d:%d", tc.path, tc.value, p, ok, tc.line, tc.col)
		}
	}
	if _, ok := ix.Value("capabilities.allowed", "CAP_BAR"); ok {
		t.Error("found a value that is not there")
	}
	if got := ix.Line("capabilities.allowed", "CAP_BAR"); got != 4 {
		t.Errorf("Line fallback = %d, want 4", got)
	}
	var nilIx *Index
	if got := nilIx.Line("x", "y"); got != 0 {
		t.Errorf("nil Line = %d", got)
	}
}

func TestBuildSyntaxError(t *testing.T) {
	ix := Build([]byte("a = \"1\"\nb = \n"))
	if _, ok := ix.Key("a"); !ok {
		t.Error("lost the key before the error")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte(doc))
	f.Add([]byte("[[a.b]]\n[a.b.c]\nx = [[{y = 'z'}]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := Build(data)
		ix.Line("a", "b")
	})
}

func TestParentsAndPathAt(t *testing.T) {
	ix := Build([]byte(doc))
	for path, line := range map[string]int{
		"routes":                    13,
		"routes[0]":                 13,
		"routes[0].profile":         13,
		"routes[1].match.labels.c":  18,
		"routes[1].match.labels":    18,
		"rootfs.scratch[1].noexec":  11,
		"rootfs.scratch[7].path":    9,
		"nothing.here":              0,
		"seccomp.deny":              21,
		"capabilities.allowed.more": 4,
	} {
		if got := ix.Line(path, ""); got != line {
			t.Errorf("Line(%q) = %d, want %d", path, got, line)
		}
	}
	for pos, want := range map[Pos]string{
		{13, 3}:  "routes[0]",
		{18, 2}:  "routes[1].match.labels",
		{11, 5}:  "rootfs.scratch[1].path",
		{21, 1}:  "seccomp.deny.extra",
		{16, 27}: "routes[1].match.annotations.example.com/x",
	} {
		if got, ok := ix.PathAt(pos); !ok || got != want {
			t.Errorf("PathAt(%v) = %q, %v; want %q", pos, got, ok, want)
		}
	}
	if got := StripIndices("routes[10].match.x[2]"); got != "routes.match.x" {
		t.Errorf("StripIndices = %q", got)
	}
}
