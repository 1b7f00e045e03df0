import CBLAS
import Dispatch
import Foundation
import Synchronization

/// OpenBLAS's thread count, which is process-wide. Concurrent callers that each make BLAS calls (two
/// matrices' spectra at once, the halves of a product) run them single-threaded, or each call would try
/// to use every core.
public enum BLASThreads {
    /// The cores this process may use.
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs body with OpenBLAS limited to one thread (its setting is restored afterwards). The first of
    /// overlapping callers (tests run concurrently) saves and lowers it, the last one restores it.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        state.withLock { s in
            if s.users == 0 {
                s.saved = openblas_get_num_threads()
                if s.saved != 1 { openblas_set_num_threads(1) }
            }
            s.users += 1
        }
        defer {
            state.withLock { s in
                s.users -= 1
                if s.users == 0 && s.saved != 1 { openblas_set_num_threads(s.saved) }
            }
        }
        return try body()
    }

    private static let state = Mutex<(users: Int, saved: Int32)>((0, 1))

    /// Runs work(i) for every i in 0..<count on all cores, each index claimed by whichever thread is
    /// free (tasks of unequal size balance themselves), with single-threaded BLAS inside.
    public static func concurrently(_ count: Int, _ work: @Sendable (Int) -> Void) {
        if count <= 1 || cores == 1 { for i in 0..<count { work(i) }; return }
        let next = Atomic<Int>(0)
        singleThreaded {
            DispatchQueue.concurrentPerform(iterations: min(count, cores)) { _ in
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= count { return }
                    work(i)
                }
            }
        }
    }
}
