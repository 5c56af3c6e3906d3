package shim

// #include <malloc.h>
import "C"

// trimCHeap returns the free pages of the C heap to the kernel. The engine
// validates a seccomp filter with libseccomp, whose allocations land in a
// glibc arena of the thread the call ran on; freed, they stay resident
// until trimmed.
func trimCHeap() { C.malloc_trim(0) }
