/// Hands memory the process no longer uses back to the kernel.
///
/// glibc's malloc keeps freed memory in its arenas (one per thread that allocated, up to eight per
/// core) for reuse, so after a burst of connections — thousands of half-sent frames, a fuzzing
/// run — resident memory stayed at its peak although the connections were gone. Fewer arenas keep
/// less idle memory apart, and `malloc_trim` returns the free pages of every arena, not only the
/// top of the main heap. (docs/OPERATIONS.md has what was measured.)
public enum MemoryReturner {
    /// Limits malloc to a few arenas; call once, before the event loops start allocating.
    public static func limitArenas(_ count: Int32 = 2) {
        #if os(Linux)
            _ = glibcMallopt(mArenaMax, count)
        #endif
    }

    /// Returns the free pages of every arena to the kernel; takes about a millisecond for a heap
    /// of tens of MiB, so it runs every few seconds, never per request.
    @discardableResult
    public static func trim() -> Bool {
        #if os(Linux)
            return glibcMallocTrim(0) == 1
        #else
            return false
        #endif
    }
}

#if os(Linux)
    // <malloc.h> is not part of Swift's Glibc module; these two glibc calls take and return C ints.
    private let mArenaMax: Int32 = -8  // M_ARENA_MAX

    @_silgen_name("mallopt")
    private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32

    @_silgen_name("malloc_trim")
    private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
