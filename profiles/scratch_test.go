package profiles

import (
	"strings"
	"testing"
)

func TestParseScratchLabel(t *testing.T) {
	got, err := ParseScratchLabel(" /var/cache/nginx, /var/log/nginx:32m ,")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Scratch{Path: "/var/cache/nginx", Size: DefaultLabelScratchSize, CopyUp: true}) ||
		got[1] != (Scratch{Path: "/var/log/nginx", Size: "32m", CopyUp: true}) {
		t.Errorf("parsed %+v", got)
	}
	for v, want := range map[string]string{
		"/usr/lib/app":         "not under /var",
		"/var":                 "not under /var",
		"var/cache":            "absolute and clean",
		"/var/cache/../../etc": "absolute and clean",
		"/var/a:1g":            "at most 256m",
		"/var/a:lots":          "not a size",
		"/var/a,/var/a/b":      "overlap",
		"/proc/x":              "which the runtime mounts",
		"/var/1,/var/2,/var/3,/var/4,/var/5,/var/6,/var/7,/var/8,/var/9": "at most 8",
	} {
		if _, err := ParseScratchLabel(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", v, err, want)
		}
	}
}

// TestWithScratch: declared directories join the profile's, noexec where
// its own scratch is, never twice at one path.
func TestWithScratch(t *testing.T) {
	p := &Profile{Rootfs: Rootfs{ReadOnly: true, Scratch: []Scratch{{Path: "/tmp", NoExec: true}}}}
	p.WithScratch([]Scratch{{Path: "/var/cache/app", CopyUp: true}, {Path: "/tmp", CopyUp: true}})
	if len(p.Rootfs.Scratch) != 2 || !p.Rootfs.Scratch[1].NoExec || !p.Rootfs.Scratch[1].CopyUp || p.Rootfs.Scratch[0].CopyUp {
		t.Errorf("scratch %+v", p.Rootfs.Scratch)
	}
}
