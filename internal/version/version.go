// Package version holds the build's version, set with -ldflags -X.
package version

// Version is the release, or the git description of the build.
var Version = "dev"
