import Foundation
import Synchronization

/// An error from the core: a plain message saying what was expected and what was given.
/// The Lua bridge prefixes the function's Lua name and the script's position.
public struct DBMError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The memory limit every tensor allocation is checked against before it is made (DESIGN §6: Linux
/// overcommits, so a huge calloc "succeeds" and the process dies later). Default: half the machine.
public enum MemoryLimit {
    private static let limitBytes = Atomic<Int>(MemoryLimit.defaultLimit)
    private static let liveBytes = Atomic<Int>(0)
    private static let peakBytes = Atomic<Int>(0)

    public static var defaultLimit: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return 4 << 30 }
        return pages * pageSize / 2
    }

    /// Bytes a single process may hold in tensors at once.
    public static var limit: Int {
        get { limitBytes.load(ordering: .relaxed) }
        set { limitBytes.store(max(0, newValue), ordering: .relaxed) }
    }
    /// Bytes held by live tensor storages now, and at most so far.
    public static var live: Int { liveBytes.load(ordering: .relaxed) }
    public static var peak: Int { peakBytes.load(ordering: .relaxed) }

    /// Reserves bytes or throws without reserving anything.
    static func reserve(_ bytes: Int) throws {
        let limit = self.limit
        if bytes > limit {
            throw DBMError("allocation of \(formatBytes(bytes)) exceeds the memory limit of \(formatBytes(limit))")
        }
        let now = liveBytes.add(bytes, ordering: .relaxed).newValue
        if now > limit {
            liveBytes.subtract(bytes, ordering: .relaxed)
            throw DBMError("allocation of \(formatBytes(bytes)) exceeds the memory limit of \(formatBytes(limit)) "
                + "(\(formatBytes(now - bytes)) already held by tensors)")
        }
        var peak = peakBytes.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = peakBytes.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
    }

    static func release(_ bytes: Int) { liveBytes.subtract(bytes, ordering: .relaxed) }

    /// Runs body with `bytes` counted against the limit (memory that is not a tensor's: a permutation,
    /// a table for Lua); throws without running it when they do not fit.
    public static func withReserved<R>(_ bytes: Int, _ body: () throws -> R) throws -> R {
        try reserve(bytes)
        defer { release(bytes) }
        return try body()
    }

    /// True when an allocation failed only because of bytes that garbage may still hold.
    public static func mightFitAfterCollection(_ bytes: Int) -> Bool { bytes <= limit }

    public static func formatBytes(_ b: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(b), u = 0
        while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[u])
    }

    /// Resident set size now and at its peak (bytes), from /proc/self/status.
    public static func residentSet() -> (current: Int, peak: Int) {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in s.split(separator: "\n") where line.hasPrefix(name) {
                let digits = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0"
                return (Int(digits) ?? 0) * 1024
            }
            return 0
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}

/// Element count of a shape, guarded against negative sizes and overflow.
public func checkedCount(_ shape: [Int]) throws -> Int {
    var n = 1
    for d in shape {
        if d < 0 { throw DBMError("expected non-negative sizes, got shape \(formatShape(shape))") }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        if o { throw DBMError("expected a shape whose element count fits in 64 bits, got \(formatShape(shape))") }
        n = p
    }
    return n
}

public func formatShape(_ shape: [Int]) -> String {
    "(" + shape.map(String.init).joined(separator: ", ") + ")"
}
