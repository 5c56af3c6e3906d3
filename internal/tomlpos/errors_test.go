package tomlpos

import (
	"errors"
	"testing"
)

type posErr struct {
	line, col int
	msg       string
}

func (e *posErr) Error() string                { return Message("f.toml", e.line, e.col, e.msg) }
func (e *posErr) Position() (line, column int) { return e.line, e.col }

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		file      string
		line, col int
		want      string
	}{
		{"f.toml", 3, 7, "f.toml:3:7: bad"},
		{"f.toml", 3, 0, "f.toml:3: bad"},
		{"f.toml", 0, 7, "f.toml: bad"},
		{"", 0, 0, "bad"},
	} {
		if got := Message(tc.file, tc.line, tc.col, "bad"); got != tc.want {
			t.Errorf("Message(%q, %d, %d) = %q, want %q", tc.file, tc.line, tc.col, got, tc.want)
		}
	}
}

func TestJoinOrdersByPlace(t *testing.T) {
	if Join([]*posErr(nil)) != nil {
		t.Fatal("no errors joined into an error")
	}
	one := &posErr{line: 2, msg: "x"}
	if got := Join([]*posErr{one}); got != one {
		t.Fatalf("one error: got %v, want it as is", got)
	}
	errs := []*posErr{{0, 0, "nowhere"}, {9, 1, "late"}, {2, 5, "b"}, {2, 1, "a"}}
	got := Join(errs).Error()
	want := "f.toml:2:1: a\nf.toml:2:5: b\nf.toml:9:1: late\nf.toml: nowhere"
	if got != want {
		t.Fatalf("joined:\n%s\nwant:\n%s", got, want)
	}
	if !errors.Is(Join(errs), errs[0]) {
		t.Fatal("joined error does not wrap its parts")
	}
}
