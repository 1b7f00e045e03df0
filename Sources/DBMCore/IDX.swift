import CZlib
import Foundation

/// The IDX format of MNIST and Fashion-MNIST (DESIGN §7), plain or gzip-compressed:
///     0x00 0x00 · type byte · rank · rank big-endian UInt32 dims · the body (product of dims elements).
/// Only the unsigned-byte type (0x08) is supported: every image and label file of both data sets uses it.
///
/// Files go through zlib's gzread, which decompresses a gzip stream (magic 1f 8b) and copies any other
/// file as it is. The whole file is read, so a gzip stream is checked to its CRC and a body with bytes
/// after it is an error too (dims that disagree with the data are caught either way).
public enum IDX {
    /// Where the Debian package `dataset-fashion-mnist` puts the four gzipped files (scripts/setup installs it).
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    /// The largest body read, in bytes: 2^31 (the Fashion-MNIST training images are 47 MB).
    public static let maxBodyBytes = 1 << 31

    private static let typeNames: [UInt8: String] = [
        0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double",
    ]

    /// The dims and the body of an unsigned-byte IDX file.
    public static func read(path: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let file = try InputFile(path: path)   // missing file, not a regular file: its messages
        guard let gz = gzdopen(file.fd, "rb") else {
            file.close()
            throw DBMError("IDX file '\(path)': cannot open it for reading")
        }
        defer { gzclose(gz) }   // closes file.fd too
        _ = gzbuffer(gz, 1 << 17)
        let reader = Reader(gz: gz, path: path)
        let shape = try readHeader(reader)
        let count = try bodyByteCount(reader, shape: shape)
        let body = try readBody(reader, shape: shape, count: count)
        try expectEnd(reader, shape: shape)
        return (shape, body)
    }

    /// An open IDX file read through zlib, and the messages that name it.
    private struct Reader {
        let gz: gzFile
        let path: String

        func fail(_ what: String) -> DBMError { DBMError("IDX file '\(path)': \(what)") }

        // Reads up to count bytes (fewer only at the end of the data); a damaged gzip stream throws.
        func readUpTo(_ p: UnsafeMutableRawPointer, _ count: Int) throws -> Int {
            var done = 0
            while done < count {
                let n = Int(gzread(gz, p + done, UInt32(min(count - done, 1 << 30))))
                if n < 0 { throw fail("corrupt gzip stream (zlib: \(IDX.zlibError(gz)))") }
                if n == 0 { break }
                done += n
            }
            // zlib reports a gzip stream cut short as Z_BUF_ERROR, not as a failed read.
            var status: Int32 = 0
            _ = gzerror(gz, &status)
            if status == Z_BUF_ERROR { throw fail("the gzip stream ends early (truncated file)") }
            if status != Z_OK { throw fail("corrupt gzip stream (zlib: \(IDX.zlibError(gz)))") }
            return done
        }
    }

    /// Reads and checks the magic, the element type and the rank, then the dims.
    private static func readHeader(_ reader: Reader) throws -> [Int] {
        var head = [UInt8](repeating: 0, count: 4)
        let got = try head.withUnsafeMutableBytes { try reader.readUpTo($0.baseAddress!, 4) }
        guard got == 4 else { throw reader.fail("truncated header: expected at least 4 bytes, got \(got)") }
        guard head[0] == 0, head[1] == 0 else {
            throw reader.fail(String(format: "wrong magic number: the file starts with %02x %02x, not 00 00 "
                                     + "(not an IDX file)", head[0], head[1]))
        }
        guard head[2] == 0x08 else {
            let name = typeNames[head[2]].map { " (\($0))" } ?? " (not an IDX type)"
            throw reader.fail(String(format: "unsupported element type 0x%02x", head[2]) + name
                              + "; only 0x08 (unsigned byte) is supported")
        }
        let rank = Int(head[3])
        guard rank >= 1 else { throw reader.fail("the header declares 0 dimensions") }

        var dimBytes = [UInt8](repeating: 0, count: 4 * rank)
        let gotDims = try dimBytes.withUnsafeMutableBytes { try reader.readUpTo($0.baseAddress!, 4 * rank) }
        guard gotDims == 4 * rank else {
            throw reader.fail("truncated header: \(rank) dimensions need \(4 * rank) bytes after the first 4, got \(gotDims)")
        }
        return (0..<rank).map { d in dimBytes[4 * d..<4 * d + 4].reduce(0) { $0 << 8 | Int($1) } }
    }

    /// The product of the dims, checked for overflow and against `maxBodyBytes`.
    private static func bodyByteCount(_ reader: Reader, shape: [Int]) throws -> Int {
        var count = 1
        for n in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow, c <= maxBodyBytes else {
                throw reader.fail("absurd dimensions \(shape): the body would exceed the limit of \(maxBodyBytes) bytes")
            }
            count = c
        }
        return count
    }

    /// Reads the `count` bytes of the body.
    private static func readBody(_ reader: Reader, shape: [Int], count: Int) throws -> [UInt8] {
        // The body counts against the memory limit while it is read (the tensor made from it has its own).
        try MemoryLimit.reserve(count)
        defer { MemoryLimit.release(count) }
        var gotBody = 0
        let body = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { gotBody = try reader.readUpTo(buffer.baseAddress!, count) }
            initialized = gotBody
        }
        guard gotBody == count else {
            throw reader.fail("truncated body: dimensions \(shape) need \(count) bytes, the file has \(gotBody)")
        }
        return body
    }

    /// Reads to the end of the data, which must come right after the body.
    private static func expectEnd(_ reader: Reader, shape: [Int]) throws {
        var extra = 0
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try scratch.withUnsafeMutableBytes { try reader.readUpTo($0.baseAddress!, $0.count) }
            if n == 0 { break }
            extra += n
        }
        guard extra == 0 else { throw reader.fail("\(extra) bytes after the body of dimensions \(shape) (wrong dimensions?)") }
    }

    /// Images as a float32 tensor (count, rows·cols) of pixel/255 in [0, 1]: the first `limit` images
    /// (all when nil or when the file has fewer). The file must have 3 dims (count, rows, cols).
    public static func images(path: String, limit: Int? = nil) throws -> Tensor {
        let (shape, bytes) = try read(path: path)
        guard shape.count == 3 else {
            throw DBMError("IDX file '\(path)': expected images of 3 dimensions (count, rows, cols), got dimensions \(shape)")
        }
        let n = try clamped(limit, shape[0]), size = shape[1] * shape[2]
        let out = try Tensor(shape: [n, size], dtype: .float32, zeroed: false)
        let p = out.pointer(Float.self)
        for i in 0..<(n * size) { p[i] = Float(bytes[i]) / 255 }
        return out
    }

    /// Labels as integers: the first `limit` (all when nil or when the file has fewer). The file must have
    /// 1 dimension.
    public static func labels(path: String, limit: Int? = nil) throws -> [Int] {
        let (shape, bytes) = try read(path: path)
        guard shape.count == 1 else {
            throw DBMError("IDX file '\(path)': expected labels of 1 dimension, got dimensions \(shape)")
        }
        return bytes[0..<(try clamped(limit, shape[0]))].map { Int($0) }
    }

    private static func clamped(_ limit: Int?, _ count: Int) throws -> Int {
        guard let limit else { return count }
        guard limit >= 0 else { throw DBMError("IDX: limit must be >= 0, got \(limit)") }
        return min(limit, count)
    }

    // zlib's message without the "<fd:N>: " it prefixes for a gzdopen'ed file (ours names the path).
    private static func zlibError(_ gz: gzFile) -> String {
        var status: Int32 = 0
        let message = String(cString: gzerror(gz, &status))
        guard message.hasPrefix("<fd:"), let colon = message.range(of: ": ") else { return message }
        return String(message[colon.upperBound...])
    }
}
