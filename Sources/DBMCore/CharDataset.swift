import Foundation

/// A character-level text dataset, as nanoGPT's shakespeare_char: the vocabulary is the sorted set of
/// the text's characters (Unicode scalars by code point; for ASCII, byte order), a character's token is
/// its 0-based index there, and the first `trainFraction` of the characters train, the rest validate.
/// Batches are windows at uniform random offsets: x = tokens[o ..< o+T], y = tokens[o+1 ..< o+T+1].
public final class CharDataset: Sendable {
    public enum Split: String, Sendable, CaseIterable {
        case train, validation
        var label: String { "the \(rawValue) split" }
    }

    /// The characters in token order.
    public let vocabulary: [Unicode.Scalar]
    /// The whole text as 0-based tokens.
    public let tokens: [Int32]
    /// Characters of the train split (the rest, tokens.count - trainCount, validate).
    public let trainCount: Int
    public let trainFraction: Double
    // Token of a character: a table for the first 256 code points (-1: absent), a dictionary above.
    private let latin1Tokens: [Int32]
    private let otherTokens: [UInt32: Int32]

    /// Reads a UTF-8 text file (the whole of it) and tokenizes it.
    public convenience init(path: String, trainFraction: Double = 0.9) throws {
        let file = try InputFile(path: path)
        defer { file.close() }
        var bytes = [UInt8](repeating: 0, count: file.size)
        let got = try bytes.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: $0.count) }
        guard got == file.size else { throw DBMError("cannot read file '\(path)': expected \(file.size) bytes, got \(got)") }
        try self.init(utf8: bytes, trainFraction: trainFraction, source: "file '\(path)'")
    }

    public convenience init(text: String, trainFraction: Double = 0.9) throws {
        try self.init(utf8: Array(text.utf8), trainFraction: trainFraction, source: "text")
    }

    private init(utf8 bytes: [UInt8], trainFraction: Double, source: String) throws {
        guard trainFraction > 0, trainFraction < 1 else {
            throw DBMError("expected a train fraction strictly between 0 and 1, got \(trainFraction)")
        }
        // Pass 1: the code points, checked as UTF-8, and which of them occur.
        var scalars: [UInt32] = []
        scalars.reserveCapacity(bytes.count)
        var seenLatin1 = [Bool](repeating: false, count: 256)
        var seenOther = Set<UInt32>()
        try bytes.withUnsafeBufferPointer { b in
            try CharDataset.forEachScalar(b, source: source) { v, _ in
                scalars.append(v)
                if v < 256 { seenLatin1[Int(v)] = true } else { seenOther.insert(v) }
            }
        }
        guard !scalars.isEmpty else { throw DBMError("expected a non-empty text, got an empty \(source)") }
        let n = scalars.count
        let trainCount = Int(Double(n) * trainFraction)   // as nanoGPT: int(n * 0.9)
        guard trainCount > 0, trainCount < n else {
            throw DBMError("expected a train fraction that leaves both splits non-empty, got \(trainFraction) of \(n) characters "
                + "(train \(trainCount), validation \(n - trainCount))")
        }
        // The vocabulary in code point order, and the token of each character.
        let codes = (0..<256).filter { seenLatin1[$0] }.map { UInt32($0) } + seenOther.sorted()
        var latin1 = [Int32](repeating: -1, count: 256)
        var other: [UInt32: Int32] = [:]
        for (k, v) in codes.enumerated() {
            if v < 256 { latin1[Int(v)] = Int32(k) } else { other[v] = Int32(k) }
        }
        // Pass 2: tokens.
        var tokens = [Int32](repeating: 0, count: n)
        tokens.withUnsafeMutableBufferPointer { out in
            scalars.withUnsafeBufferPointer { s in
                for i in 0..<n { out[i] = s[i] < 256 ? latin1[Int(s[i])] : other[s[i]]! }
            }
        }
        self.vocabulary = codes.map { Unicode.Scalar($0)! }
        self.tokens = tokens
        self.trainCount = trainCount
        self.trainFraction = trainFraction
        self.latin1Tokens = latin1
        self.otherTokens = other
    }

    /// Calls body with each code point of UTF-8 bytes and its byte offset; ASCII takes a fast path.
    private static func forEachScalar(_ b: UnsafeBufferPointer<UInt8>, source: String,
                                      _ body: (UInt32, Int) throws -> Void) throws {
        var i = 0
        while i < b.count {
            let c = b[i]
            if c < 0x80 { try body(UInt32(c), i); i += 1; continue }
            // Multi-byte sequence (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
            let (len, min): (Int, UInt32) = c >= 0xF0 && c <= 0xF4 ? (4, 0x10000) : c >= 0xE0 && c < 0xF0 ? (3, 0x800)
                : c >= 0xC2 && c < 0xE0 ? (2, 0x80) : (0, 0)
            var v = UInt32(c) & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F)
            var ok = len > 0 && i + len <= b.count
            if ok {
                for k in 1..<len {
                    let d = b[i + k]
                    if d & 0xC0 != 0x80 { ok = false; break }
                    v = v << 6 | UInt32(d & 0x3F)
                }
            }
            guard ok, v >= min, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else {
                throw DBMError("expected UTF-8 text, got an invalid byte sequence at byte offset \(i) of \(source) "
                    + "(byte 0x\(String(c, radix: 16, uppercase: true)))")
            }
            try body(v, i)
            i += len
        }
    }

    public var vocabSize: Int { vocabulary.count }

    /// The characters in token order as one string (for checkpoint metadata: `vocab`).
    public var vocabularyString: String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: vocabulary)
        return String(s)
    }

    /// The token range of a split in `tokens`.
    public func range(of split: Split) -> Range<Int> {
        split == .train ? 0..<trainCount : trainCount..<tokens.count
    }

    public func count(_ split: Split) -> Int { range(of: split).count }

    /// The 0-based token of a character, or nil if it is not in the vocabulary.
    public func token(of c: Unicode.Scalar) -> Int32? { token(code: c.value) }

    @inline(__always) private func token(code v: UInt32) -> Int32? {
        if v < 256 { let t = latin1Tokens[Int(v)]; return t >= 0 ? t : nil }
        return otherTokens[v]
    }

    /// The 0-based tokens of a string; a character outside the vocabulary is an error naming it.
    public func encode(_ text: String) throws -> [Int32] {
        var text = text
        return try text.withUTF8 { try encode(utf8: $0) }
    }

    /// The 0-based tokens of UTF-8 bytes (invalid UTF-8 is an error naming the byte offset).
    public func encode(utf8 b: UnsafeBufferPointer<UInt8>) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(b.count)
        var position = 0
        try CharDataset.forEachScalar(b, source: "the text to encode") { v, _ in
            guard let t = token(code: v) else {
                let c = Unicode.Scalar(v)!
                let hex = String(v, radix: 16, uppercase: true)
                throw DBMError("character '\(c.escaped(asASCII: false))' (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex)) "
                    + "at position \(position + 1) is not in the vocabulary of \(vocabSize) characters")
            }
            out.append(t)
            position += 1
        }
        return out
    }

    /// The string of 0-based tokens; a token outside 0 ..< vocabSize is an error.
    public func decode(_ ids: [Int32]) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for (k, id) in ids.enumerated() {
            guard id >= 0, Int(id) < vocabulary.count else {
                throw DBMError("expected tokens in 0..<\(vocabulary.count) (the vocabulary size), got \(id) at position \(k + 1)")
            }
            let c = vocabulary[Int(id)]
            if c.isASCII { bytes.append(UInt8(c.value)) } else { bytes.append(contentsOf: c.utf8) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// B windows of T tokens of a split, row after row (x and y are B·T long, row-major (B, T)), at offsets
    /// drawn uniformly in 0 ..< (n − T) as nanoGPT's get_batch: x = tokens[o ..< o+T], y = tokens[o+1 ..< o+T+1].
    public func batch(split: Split, batchSize: Int, blockSize: Int, generator: Generator) throws -> (x: [Int32], y: [Int32]) {
        guard batchSize > 0 else { throw DBMError("expected a positive batch size, got \(batchSize)") }
        guard blockSize > 0 else { throw DBMError("expected a positive block size, got \(blockSize)") }
        let r = range(of: split)
        guard blockSize < r.count else {
            throw DBMError("block size \(blockSize) is larger than \(split.label) (\(r.count) characters) allows: expected at most \(r.count - 1)")
        }
        let count = try checkedCount([batchSize, blockSize])
        guard count <= MemoryLimit.limit / 8 else {
            throw DBMError("a batch of \(batchSize) × \(blockSize) tokens exceeds the memory limit of \(MemoryLimit.formatBytes(MemoryLimit.limit))")
        }
        var x = [Int32](repeating: 0, count: count), y = [Int32](repeating: 0, count: count)
        tokens.withUnsafeBufferPointer { t in
            x.withUnsafeMutableBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    for b in 0..<batchSize {
                        let o = r.lowerBound + generator.below(r.count - blockSize)
                        for k in 0..<blockSize {
                            xs[b * blockSize + k] = t[o + k]
                            ys[b * blockSize + k] = t[o + k + 1]
                        }
                    }
                }
            }
        }
        return (x, y)
    }
}
