import Foundation

/// A .npy file that grows along its first dimension, one append at a time, at a cost proportional to
/// what is appended (the recorder's spectra/<matrix>.npy and steps files: a run that records every
/// step for 10⁵ steps writes each row once, not the whole file at each record).
///
/// The header is numpy's (`Npy.growableHeaderBytes`): room for a 21-digit first dimension, so its
/// length never changes and an append rewrites it in place. An append writes its rows after the rows
/// the header counts, then the header with the new count (two pwrites, no fsync). A process killed at
/// any moment therefore leaves a valid file:
///   - killed before or during the row write: the header counts the old rows; what follows them is
///     ignored by numpy (np.load reads `count` elements) and by `Npy.read` alike;
///   - killed between the row write and the header write: the same, with whole rows following;
///   - the header write is one pwrite of about 128 bytes inside the first page, which a kill does
///     not split (the kernel checks for a fatal signal between pages, not within one).
/// The next append (or `truncate`) writes over whatever follows the counted rows. Nothing is fsync'd
/// until `close`, which is enough against a killed process (the page cache survives it), not against
/// power loss (as for AtomicOutputFile).
///
/// The file is created whole (header and initial rows) under a temporary name and renamed over
/// `path`, so an existing file is replaced atomically: readers see the old file or the new one.
public final class NpyAppender {
    public let path: String
    /// The element type stored: .float32, .float64, .int32 or .int64 (never .same).
    public let type: NpyWriteType
    public let descr: String
    /// The sizes after the first dimension: [] for a 1-D file (n,), [cols] for rows × cols.
    public let rowShape: [Int]
    /// The rows the header counts.
    public private(set) var rows: Int
    let rowElements: Int
    let rowBytes: Int
    let dataOffset: Int
    private var fd: Int32
    /// Test hook (see `killHook`): SIGKILL this process after this many row writes, before the header.
    private let killAfterWrites: Int?
    private var rowWrites = 0

    /// Environment variable of the test hook: "SUFFIX:N" makes the appender whose path ends with SUFFIX
    /// send SIGKILL to its own process right after its N-th append has written its rows, before the
    /// header update: the one moment a timed kill can hardly hit. Used by the recorder's kill test only.
    public static let killHook = "DBM_NPY_APPEND_KILL"

    /// Creates (or atomically replaces) `path` with the rows of `initial` (nil: no rows).
    /// `type` .same stores `initial`'s dtype (Float64 without `initial`).
    public init(path: String, rowShape: [Int], type: NpyWriteType = .float64, initial: Tensor? = nil) throws {
        self.path = path
        self.rowShape = rowShape
        let resolved = Npy.fileType(type, for: initial?.dtype ?? .float64)
        self.type = resolved.type
        self.descr = resolved.descr
        guard rowShape.count < Npy.maxDimensions else {
            throw DBMError("cannot create '\(path)': rows of \(rowShape.count) dimensions; at most \(Npy.maxDimensions - 1) are supported")
        }
        if let bad = rowShape.first(where: { $0 < 0 }) {
            throw DBMError("cannot create '\(path)': row shape \(formatShape(rowShape)) has the negative size \(bad)")
        }
        var elements = 1
        for s in rowShape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: s)
            guard !overflow else { throw DBMError("cannot create '\(path)': rows of shape \(formatShape(rowShape)) are too large") }
            elements = p
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: resolved.itemSize)
        guard !overflow else { throw DBMError("cannot create '\(path)': rows of shape \(formatShape(rowShape)) are too large") }
        rowElements = elements
        rowBytes = bytes
        killAfterWrites = NpyAppender.killHookCount(path: path)

        let src = try initial.map { try NpyAppender.rows(of: $0, rowShape: rowShape, action: "cannot create '\(path)'") }
        let count = src?.rows ?? 0
        let header = Npy.growableHeaderBytes(descr: descr, shape: [count] + rowShape)
        dataOffset = header.count
        _ = try NpyAppender.offset(dataOffset, count, rowBytes, path: path)
        let out = try AtomicOutputFile(path: path)
        do {
            try header.withUnsafeBytes { try out.write($0.baseAddress!, $0.count) }
            if let src { try Npy.encode(src.tensor, as: resolved.type, path: path) { try out.write($0, $1) } }
            fd = try out.commitKeepingOpen()
        } catch {
            out.abort()
            throw error
        }
        rows = count
    }

    /// Appends the rows of `t`: one row (shape rowShape) or k rows (shape (k, rowShape...)); a 1-D file
    /// takes a 0-d tensor (one element) or a 1-D one. Returns the new row count.
    @discardableResult
    public func append(_ t: Tensor) throws -> Int {
        guard fd >= 0 else { throw DBMError("cannot append to '\(path)': the appender is closed") }
        let src = try NpyAppender.rows(of: t, rowShape: rowShape, action: "cannot append to '\(path)'")
        if src.rows == 0 { return rows }
        let (newRows, overflow) = rows.addingReportingOverflow(src.rows)
        guard !overflow else { throw DBMError("cannot append to '\(path)': too many rows") }
        _ = try NpyAppender.offset(dataOffset, newRows, rowBytes, path: path)
        var at = try NpyAppender.offset(dataOffset, rows, rowBytes, path: path)
        try Npy.encode(src.tensor, as: type, path: path) { p, n in
            try writeFully(p, n, at: at)
            at += n
        }
        rowWrites += 1
        if let k = killAfterWrites, rowWrites == k { _ = kill(getpid(), SIGKILL); while true { pause() } }
        try writeHeader(rows: newRows)
        rows = newRows
        return rows
    }

    /// Keeps the first n rows (0 ≤ n ≤ rows): the header first, then the file cut, so a kill between
    /// leaves a header that counts n rows with more data after them (valid, as after an append).
    public func truncate(rows n: Int) throws {
        guard fd >= 0 else { throw DBMError("cannot truncate '\(path)': the appender is closed") }
        guard n >= 0, n <= rows else {
            throw DBMError("cannot truncate '\(path)' to \(n) rows: it has \(rows) (expected 0...\(rows))")
        }
        try writeHeader(rows: n)
        rows = n
        let end = try NpyAppender.offset(dataOffset, n, rowBytes, path: path)
        while ftruncate(fd, off_t(end)) != 0 {
            if errno == EINTR { continue }
            throw DBMError("cannot truncate '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Flushes the file to disk (fsync) and closes it. Later appends throw; a second close does nothing.
    public func close() throws {
        guard fd >= 0 else { return }
        let fd = self.fd
        self.fd = -1
        let synced = fsync(fd) == 0 ? nil : errno
        let closed = Glibc.close(fd) == 0 ? nil : errno
        if let e = synced ?? closed {
            throw DBMError("cannot write '\(path)': \(String(cString: strerror(e)))")
        }
    }

    public var isClosed: Bool { fd < 0 }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    // ------------------------------------------------------------------ helpers

    /// The header for `n` rows, written over the old one: the same length, whatever n.
    private func writeHeader(rows n: Int) throws {
        let header = Npy.growableHeaderBytes(descr: descr, shape: [n] + rowShape)
        guard header.count == dataOffset else {   // cannot happen: 21 digits hold any Int
            throw DBMError("cannot append to '\(path)': the header for \(n) rows does not fit in place")
        }
        try header.withUnsafeBytes { try writeFully($0.baseAddress!, $0.count, at: 0) }
    }

    private func writeFully(_ p: UnsafeRawPointer, _ count: Int, at offset: Int) throws {
        try writeAll(count, failing: "cannot write '\(path)'") { done, length in
            pwrite(fd, p + done, length, off_t(offset + done))
        }
    }

    /// dataOffset + n·rowBytes, checked against overflow (of Int and of off_t).
    private static func offset(_ base: Int, _ n: Int, _ rowBytes: Int, path: String) throws -> Int {
        let (bytes, o1) = n.multipliedReportingOverflow(by: rowBytes)
        let (end, o2) = base.addingReportingOverflow(bytes)
        guard !o1, !o2, Int64(exactly: end) != nil else { throw DBMError("'\(path)': \(n) rows are too many bytes") }
        return end
    }

    /// t as contiguous rows of rowShape, and how many.
    private static func rows(of t: Tensor, rowShape: [Int], action: String) throws -> (tensor: Tensor, rows: Int) {
        if t.shape == rowShape { return (try t.contiguous(), 1) }
        if t.rank == rowShape.count + 1 && Array(t.shape.dropFirst()) == rowShape { return (try t.contiguous(), t.shape[0]) }
        let one = formatShape(rowShape), many = "(" + (["k"] + rowShape.map(String.init)).joined(separator: ", ") + ")"
        throw DBMError("\(action): expected one row of shape \(one) or k rows of shape \(many), "
            + "got shape \(formatShape(t.shape))")
    }

    /// N of "SUFFIX:N" in $DBM_NPY_APPEND_KILL when `path` ends with SUFFIX.
    private static func killHookCount(path: String) -> Int? {
        guard let raw = getenv(killHook) else { return nil }
        let value = String(cString: raw)
        guard let colon = value.lastIndex(of: ":"), let n = Int(value[value.index(after: colon)...]), n > 0 else { return nil }
        let suffix = String(value[..<colon])
        return !suffix.isEmpty && path.hasSuffix(suffix) ? n : nil
    }
}
