package profiles

import (
	"errors"

	"github.com/hardened-dev/hardened/internal/tomlpos"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrUnknownProfile: no profile of that name in the set.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrInvalidProfile: a profile file cannot be read, decoded or
	// validated. Every *Error wraps it.
	ErrInvalidProfile = errors.New("invalid profile")
)

// Error is a problem in one profile file, with the place it was found.
// Its message reads "file:line: what" (line and column when known), so an
// operator can jump to it. It wraps ErrInvalidProfile and the cause, if any.
type Error struct {
	// File is the profile's source: a path, or "builtin/NAME.toml".
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line   int
	Column int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying cause (an I/O error), or nil.
	Err error
}

func (e *Error) Error() string { return tomlpos.Message(e.File, e.Line, e.Column, e.Msg) }

// Position returns the problem's line and column (0 when unknown).
func (e *Error) Position() (line, column int) { return e.Line, e.Column }

// Unwrap returns ErrInvalidProfile and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidProfile, e.Err}
	}
	return []error{ErrInvalidProfile}
}

// join returns nil, the only error, or all of them ordered by place.
func join(errs []*Error) error { return tomlpos.Join(errs) }
