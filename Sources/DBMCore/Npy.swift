import Foundation

/// The element type `Npy.write` stores: the tensor's own (`.same`), or a conversion.
/// Integer types round to nearest (ties to even, like numpy's `rint`) and refuse NaN, ±Inf and
/// values outside the type's range rather than wrapping silently.
public enum NpyWriteType: Sendable {
    case same, float32, float64, int32, int64
}

/// numpy's .npy format (versions 1.0, 2.0 and 3.0):
/// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
///
/// Layout: the magic string `\x93NUMPY`, two version bytes, a little-endian header length (2 bytes
/// in 1.0, 4 bytes in 2.0 and 3.0), the header (a Python dict literal padded with spaces and ending
/// in '\n'), then the raw elements.
///
/// Files come from outside, so the reader trusts nothing in them: every size is checked against the
/// file's real size before anything is allocated or read, and every problem is a DBMError naming the
/// file. Nothing in a file can make it crash.
public enum Npy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
    /// numpy's own limit on dimensions (NPY_MAXDIMS in numpy 2); also keeps a lying header cheap.
    static let maxDimensions = 64
    /// Nesting allowed in the header literal; bounds the recursion of the parser.
    static let maxNesting = 16
    /// Elements converted per chunk when the file's element type differs from the tensor's.
    static let chunkElements = 1 << 16

    // ------------------------------------------------------------------ reading

    /// Reads a .npy file. `<f4`/`>f4` give a Float32 tensor; `<f8`/`>f8` and every integer or bool
    /// type give a Float64 tensor. Fortran-ordered files are returned in C order (what numpy shows).
    public static func read(path: String) throws -> Tensor {
        let file = try InputFile(path: path)
        defer { file.close() }
        let (major, prefixLength, headerLength) = try readPrefix(file, path: path)
        let headerBytes = try readHeaderBytes(file, at: prefixLength, length: headerLength, path: path)
        let header = try Header.parse(headerBytes, utf8: major == 3, path: path)
        let dataOffset = prefixLength + headerLength
        let count = try checkedDataCount(header, available: file.size - dataOffset, path: path)
        // Extra bytes after the data are ignored, as numpy does.

        let dtype: DType = header.element.kind == .float && header.element.size == 4 ? .float32 : .float64
        let t = try Tensor(shape: header.shape, dtype: dtype, zeroed: false)
        try file.seek(to: dataOffset)
        try readElements(from: file, element: header.element, count: count, into: t.storage.bytes, path: path)

        guard header.fortranOrder, header.shape.count > 1 else { return t }
        // The elements are in column-major order: view them with column-major strides, then copy to C order.
        var strides = [Int](repeating: 1, count: header.shape.count)
        for d in 1..<header.shape.count { strides[d] = strides[d - 1] * max(header.shape[d - 1], 1) }
        return try Tensor(storage: t.storage, dtype: dtype, shape: header.shape, strides: strides, offset: 0).copy()
    }

    /// Reads and checks the magic string, the version and the header length field: the major version,
    /// the length of this prefix and the header length (checked against the file's size).
    private static func readPrefix(_ file: InputFile, path: String) throws -> (major: UInt8, prefixLength: Int, headerLength: Int) {
        let size = file.size
        var prefix = [UInt8](repeating: 0, count: 12)
        let got = try prefix.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: min(12, size)) }
        guard got >= magic.count, Array(prefix[0..<magic.count]) == magic else {
            throw DBMError("file '\(path)' is not an npy file (it does not start with the magic string \\x93NUMPY)")
        }
        guard got >= 8 else { throw DBMError("file '\(path)' is truncated: it ends inside the npy version field") }
        let major = prefix[6], minor = prefix[7]
        let lengthBytes: Int
        switch (major, minor) {
        case (1, 0): lengthBytes = 2
        case (2, 0), (3, 0): lengthBytes = 4
        default:
            throw DBMError("file '\(path)' has npy format version \(major).\(minor); expected 1.0, 2.0 or 3.0")
        }
        let prefixLength = 8 + lengthBytes
        guard got >= prefixLength else {
            throw DBMError("file '\(path)' is truncated: it ends inside the npy header length field")
        }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(prefix[8 + i]) << (8 * i) }  // little-endian
        guard headerLength <= size - prefixLength else {
            throw DBMError("file '\(path)' has a truncated header: the header length field says \(headerLength) bytes, "
                + "but only \(size - prefixLength) follow")
        }
        return (major, prefixLength, headerLength)
    }

    /// Reads exactly `length` header bytes after the prefix.
    private static func readHeaderBytes(_ file: InputFile, at offset: Int, length headerLength: Int, path: String) throws -> [UInt8] {
        var headerBytes = [UInt8](repeating: 0, count: headerLength)
        if headerLength > 0 {
            try file.seek(to: offset)
            let n = try headerBytes.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: headerLength) }
            guard n == headerLength else { throw DBMError("file '\(path)' has a truncated header (the file shrank while reading)") }
        }
        return headerBytes
    }

    /// The number of elements the header declares, checked against the `available` bytes of data
    /// before anything is allocated.
    private static func checkedDataCount(_ header: Header, available: Int, path: String) throws -> Int {
        let count = try checkedCount(header.shape)
        let (needed, overflow) = count.multipliedReportingOverflow(by: header.element.size)
        guard !overflow else {
            throw DBMError("file '\(path)': shape \(formatShape(header.shape)) of \(header.descr) has too many bytes")
        }
        guard needed <= available else {
            throw DBMError("file '\(path)' holds \(available) bytes of data, shape \(formatShape(header.shape)) "
                + "of \(header.descr) needs \(needed)")
        }
        return count
    }

    /// Reads `count` elements of the file's type at the current position into `dest` (Float32 for
    /// f4, Float64 otherwise), converting to the host's byte order.
    private static func readElements(from file: InputFile, element: Element, count: Int,
                                     into dest: UnsafeMutableRawPointer, path: String) throws {
        func readFully(_ p: UnsafeMutableRawPointer, _ bytes: Int) throws {
            let n = try file.read(into: p, count: bytes)
            guard n == bytes else { throw DBMError("file '\(path)' is truncated (it shrank while reading)") }
        }
        if element.kind == .float {
            // Same width as the tensor's elements: read straight in, then swap bytes if needed.
            try readFully(dest, count * element.size)
            if element.bigEndian != hostIsBigEndian {
                if element.size == 4 { swapInPlace(dest, count, UInt32.self) } else { swapInPlace(dest, count, UInt64.self) }
            }
            return
        }
        // Integers and bools: convert to Float64 chunk by chunk through a small buffer.
        let out = dest.assumingMemoryBound(to: Double.self)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * element.size, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let n = min(chunkElements, count - done)
            try readFully(buffer, n * element.size)
            let o = out + done, big = element.bigEndian
            switch (element.kind, element.size) {
            case (.bool, _): for i in 0..<n { o[i] = buffer.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
            case (.signed, 1): convert(buffer, o, n, Int8.self, big)
            case (.signed, 2): convert(buffer, o, n, Int16.self, big)
            case (.signed, 4): convert(buffer, o, n, Int32.self, big)
            case (.signed, _): convert(buffer, o, n, Int64.self, big)
            case (.unsigned, 1): convert(buffer, o, n, UInt8.self, big)
            case (.unsigned, 2): convert(buffer, o, n, UInt16.self, big)
            case (.unsigned, 4): convert(buffer, o, n, UInt32.self, big)
            default: convert(buffer, o, n, UInt64.self, big)
            }
            done += n
        }
    }

    private static func convert<T: FixedWidthInteger>(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Double>,
                                                      _ n: Int, _: T.Type, _ bigEndian: Bool) {
        let w = MemoryLayout<T>.size
        for i in 0..<n {
            let raw = src.loadUnaligned(fromByteOffset: i * w, as: T.self)
            dst[i] = Double(bigEndian ? T(bigEndian: raw) : T(littleEndian: raw))
        }
    }

    /// Reverses the bytes of each of n words; raw loads and stores so the memory's bound type does not matter.
    private static func swapInPlace<T: FixedWidthInteger>(_ p: UnsafeMutableRawPointer, _ n: Int, _: T.Type) {
        let w = MemoryLayout<T>.size
        for i in 0..<n {
            let v = p.load(fromByteOffset: i * w, as: T.self)
            p.storeBytes(of: v.byteSwapped, toByteOffset: i * w, as: T.self)
        }
    }

    static let hostIsBigEndian = 1.bigEndian == 1

    // ------------------------------------------------------------------ writing

    /// Writes a tensor as a .npy file (version 1.0, or 2.0 if the header needs more than 65535 bytes),
    /// little-endian, C order, data starting at a multiple of 64 bytes. The file is written to a
    /// temporary name in the same directory and renamed over `path`, so readers never see half a file
    /// and a failed write leaves any old file untouched.
    public static func write(_ t: Tensor, path: String, as type: NpyWriteType = .same) throws {
        let src = try t.contiguous()
        let (resolved, descr, _) = fileType(type, for: src.dtype)
        let header = headerBytes(descr: descr, shape: src.shape)
        let out = try AtomicOutputFile(path: path)
        do {
            try header.withUnsafeBytes { try out.write($0.baseAddress!, $0.count) }
            try encode(src, as: resolved, path: path) { try out.write($0, $1) }
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
    }

    /// The element type a write of `type` stores for a tensor of `dtype` (`.same` resolved), its descr
    /// and its size in bytes.
    static func fileType(_ type: NpyWriteType, for dtype: DType) -> (type: NpyWriteType, descr: String, itemSize: Int) {
        let resolved: NpyWriteType = type == .same ? (dtype == .float32 ? .float32 : .float64) : type
        switch resolved {
        case .float32, .same: return (.float32, "<f4", 4)
        case .float64: return (.float64, "<f8", 8)
        case .int32: return (.int32, "<i4", 4)
        case .int64: return (.int64, "<i8", 8)
        }
    }

    /// The elements of the contiguous tensor `src` as little-endian `type` (resolved, not `.same`), handed
    /// to `sink` in chunks of at most `chunkElements` elements (pointer, byte count), in order.
    static func encode(_ src: Tensor, as type: NpyWriteType, path: String,
                       _ sink: (UnsafeRawPointer, Int) throws -> Void) throws {
        let itemSize = fileType(type, for: src.dtype).itemSize
        let count = src.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * itemSize, alignment: 16)
        defer { buffer.deallocate() }
        let floats = src.dtype == .float32 ? src.pointer(Float.self) : nil
        let doubles = src.dtype == .float64 ? src.pointer(Double.self) : nil
        var done = 0
        while done < count {
            let n = min(chunkElements, count - done)
            for i in 0..<n {
                let v = floats.map { Double($0[done + i]) } ?? doubles![done + i]
                switch type {
                case .float32, .same:
                    // From a Float32 tensor this is exact; from Float64 it rounds, as astype does.
                    buffer.storeBytes(of: Float(v).bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                case .float64:
                    buffer.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
                case .int32:
                    let r = try roundedInteger(v, index: done + i, count: count, type: "int32",
                                               low: -0x1p31, high: 0x1p31, path: path)
                    buffer.storeBytes(of: Int32(r).littleEndian, toByteOffset: i * 4, as: Int32.self)
                case .int64:
                    let r = try roundedInteger(v, index: done + i, count: count, type: "int64",
                                               low: -0x1p63, high: 0x1p63, path: path)
                    buffer.storeBytes(of: Int64(r).littleEndian, toByteOffset: i * 8, as: Int64.self)
                }
            }
            try sink(buffer, n * itemSize)
            done += n
        }
    }

    /// v rounded to nearest (ties to even), checked to lie in [low, high) — both powers of two, so exact.
    private static func roundedInteger(_ v: Double, index: Int, count: Int, type: String,
                                       low: Double, high: Double, path: String) throws -> Double {
        guard v.isFinite else {
            throw DBMError("cannot write '\(path)' as \(type): element \(index + 1) of \(count) is \(v), not a finite number")
        }
        let r = v.rounded(.toNearestOrEven)
        guard r >= low, r < high else {
            throw DBMError("cannot write '\(path)' as \(type): element \(index + 1) of \(count) is \(v), "
                + "outside the \(type) range")
        }
        return r
    }

    /// Magic, version, length and the padded header dict, so that the data starts at a multiple of 64.
    public static func headerBytes(descr: String, shape: [Int]) -> [UInt8] {
        let dict = headerDict(descr: descr, shape: shape)
        func build(version: UInt8, lengthBytes: Int) -> [UInt8]? {
            let unpadded = magic.count + 2 + lengthBytes + dict.count + 1  // +1 for the final '\n'
            return wrap(dict, version: version, lengthBytes: lengthBytes, padding: (64 - unpadded % 64) % 64)
        }
        return build(version: 1, lengthBytes: 2) ?? build(version: 2, lengthBytes: 4)!
    }

    /// numpy's room for a growing first dimension: a header holds spaces for a size of this many digits.
    public static let growthAxisMaxDigits = 21

    /// The header numpy writes (numpy.lib.format, numpy ≥ 1.23): the dict, then spaces for a first
    /// dimension of up to 21 digits, padded so the data starts at a multiple of 64 (a full 64 bytes of
    /// padding where none is needed, as numpy does). Its length does not depend on the first dimension,
    /// so a file that grows along it gets its header rewritten in place; the bytes equal numpy.save's.
    public static func growableHeaderBytes(descr: String, shape: [Int]) -> [UInt8] {
        var dict = headerDict(descr: descr, shape: shape)
        if let first = shape.first {
            dict += [UInt8](repeating: 0x20, count: max(0, growthAxisMaxDigits - String(first).utf8.count))
        }
        func build(version: UInt8, lengthBytes: Int) -> [UInt8]? {
            let unpadded = magic.count + 2 + lengthBytes + dict.count + 1
            return wrap(dict, version: version, lengthBytes: lengthBytes, padding: 64 - unpadded % 64)
        }
        return build(version: 1, lengthBytes: 2) ?? build(version: 2, lengthBytes: 4)!
    }

    /// The dict literal of a C-order header: "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }".
    static func headerDict(descr: String, shape: [Int]) -> [UInt8] {
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"  // a 1-tuple needs its comma in Python
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        return Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
    }

    /// Magic, version, header length, the dict, `padding` spaces and '\n'; nil when version 1.0's
    /// two-byte length cannot hold the header.
    static func wrap(_ dict: [UInt8], version: UInt8, lengthBytes: Int, padding: Int) -> [UInt8]? {
        let headerLength = dict.count + padding + 1
        if lengthBytes == 2 && headerLength > 0xFFFF { return nil }
        var bytes = magic + [version, 0]
        for i in 0..<lengthBytes { bytes.append(UInt8(truncatingIfNeeded: headerLength >> (8 * i))) }
        bytes += dict
        bytes += [UInt8](repeating: 0x20, count: padding)
        bytes.append(0x0A)
        return bytes
    }
}

// ---------------------------------------------------------------------- header

extension Npy {
    /// The element types the reader accepts.
    struct Element {
        enum Kind { case float, signed, unsigned, bool }
        let kind: Kind
        let size: Int
        let bigEndian: Bool

        /// Parses a descr such as "<f4", ">f8", "|u1", "|b1". nil when unsupported.
        init?(descr: String) {
            let chars = Array(descr.utf8)
            guard chars.count >= 3, let size = Int(String(decoding: chars[2...], as: UTF8.self)) else { return nil }
            let order = chars[0], code = chars[1]
            switch (code, size) {
            case (UInt8(ascii: "f"), 4), (UInt8(ascii: "f"), 8): kind = .float
            case (UInt8(ascii: "i"), 1), (UInt8(ascii: "i"), 2), (UInt8(ascii: "i"), 4), (UInt8(ascii: "i"), 8): kind = .signed
            case (UInt8(ascii: "u"), 1), (UInt8(ascii: "u"), 2), (UInt8(ascii: "u"), 4), (UInt8(ascii: "u"), 8): kind = .unsigned
            case (UInt8(ascii: "b"), 1): kind = .bool
            default: return nil
            }
            switch order {
            case UInt8(ascii: "<"): bigEndian = false
            case UInt8(ascii: ">"): bigEndian = true
            case UInt8(ascii: "="): bigEndian = Npy.hostIsBigEndian
            case UInt8(ascii: "|") where size == 1: bigEndian = false  // byte order does not apply
            default: return nil
            }
            self.size = size
        }
    }

    static let supportedDescrs = "<f4, <f8, >f4, >f8, |b1, |i1, |u1, and <i2, <i4, <i8, <u2, <u4, <u8 in either byte order"

    /// The three keys of an npy header.
    struct Header {
        let descr: String
        let element: Element
        let fortranOrder: Bool
        let shape: [Int]

        static func parse(_ bytes: [UInt8], utf8: Bool, path: String) throws -> Header {
            var parser = LiteralParser(bytes: bytes, utf8: utf8, path: path)
            let value = try parser.parseDocument()
            guard case .dict(let entries) = value else {
                throw DBMError("file '\(path)': the npy header is not a dict (it is \(value.kindName))")
            }
            var descrValue: Literal?, fortranValue: Literal?, shapeValue: Literal?
            for (key, v) in entries {
                switch key {
                case "descr": descrValue = v
                case "fortran_order": fortranValue = v
                case "shape": shapeValue = v
                default: throw DBMError("file '\(path)': unexpected key '\(key)' in the npy header "
                    + "(expected 'descr', 'fortran_order' and 'shape')")
                }
            }
            func missing(_ key: String) -> DBMError { DBMError("file '\(path)': the npy header has no '\(key)' key") }
            guard let descrValue else { throw missing("descr") }
            guard let fortranValue else { throw missing("fortran_order") }
            guard let shapeValue else { throw missing("shape") }

            let descr: String
            switch descrValue {
            case .string(let s): descr = s
            case .list: throw DBMError("file '\(path)': structured arrays (a list descr) are not supported")
            default: throw DBMError("file '\(path)': the npy header's 'descr' is \(descrValue.kindName), expected a string")
            }
            if descr.hasPrefix("|O") || descr.hasPrefix("<O") || descr.hasPrefix(">O") || descr == "O" {
                throw DBMError("file '\(path)': object arrays ('\(descr)') are not supported (numpy stores them pickled)")
            }
            guard let element = Element(descr: descr) else {
                throw DBMError("file '\(path)': unknown descr '\(descr)' (supported: \(Npy.supportedDescrs))")
            }
            guard case .bool(let fortranOrder) = fortranValue else {
                throw DBMError("file '\(path)': the npy header's 'fortran_order' is \(fortranValue.kindName), expected True or False")
            }
            guard case .tuple(let items) = shapeValue else {
                throw DBMError("file '\(path)': the npy header's 'shape' is \(shapeValue.kindName), expected a tuple of sizes")
            }
            guard items.count <= Npy.maxDimensions else {
                throw DBMError("file '\(path)': shape has \(items.count) dimensions, at most \(Npy.maxDimensions) are supported")
            }
            var shape: [Int] = []
            for item in items {
                guard case .int(let value, let text) = item else {
                    throw DBMError("file '\(path)': the npy shape holds \(item.kindName), expected integer sizes")
                }
                guard let value else { throw DBMError("file '\(path)': shape size \(text) is too large") }
                guard value >= 0 else {
                    throw DBMError("file '\(path)': shape sizes must be non-negative, the header gives \(text)")
                }
                shape.append(value)
            }
            // Strides multiply the non-zero sizes, so they must fit even when a zero size empties the shape.
            if (try? checkedCount(shape)) == nil || (try? checkedCount(shape.map { max($0, 1) })) == nil {
                throw DBMError("file '\(path)': shape \(formatShape(shape)) has too many elements")
            }
            return Header(descr: descr, element: element, fortranOrder: fortranOrder, shape: shape)
        }
    }

    /// The subset of Python literals an npy header uses.
    indirect enum Literal {
        case string(String)
        case int(Int?, String)  // nil when it does not fit an Int; the text for messages
        case bool(Bool)
        case none
        case other(String)      // floats and the like: parsed only to be refused with a clear message
        case tuple([Literal])
        case list([Literal])
        case dict([(String, Literal)])

        var kindName: String {
            switch self {
            case .string(let s): return "the string '\(s)'"
            case .int(_, let t): return "the integer \(t)"
            case .bool(let b): return b ? "True" : "False"
            case .none: return "None"
            case .other(let t): return "the value \(t)"
            case .tuple: return "a tuple"
            case .list: return "a list"
            case .dict: return "a dict"
            }
        }
    }

    /// A small recursive-descent parser for Python literals (what `ast.literal_eval` would accept
    /// in an npy header), over raw bytes, bounded in nesting depth.
    struct LiteralParser {
        let bytes: [UInt8]
        let utf8: Bool   // version 3.0 headers are UTF-8, older ones latin-1
        let path: String
        var pos = 0

        init(bytes: [UInt8], utf8: Bool, path: String) { self.bytes = bytes; self.utf8 = utf8; self.path = path }

        func fail(_ problem: String) -> DBMError {
            DBMError("file '\(path)': the npy header is not a valid Python dict literal: \(problem) at header byte \(pos)")
        }

        mutating func parseDocument() throws -> Literal {
            skipSpace()
            guard pos < bytes.count else { throw fail("the header is empty") }
            let v = try parseValue(depth: 0)
            skipSpace()
            guard pos == bytes.count else { throw fail("unexpected text after the value") }
            return v
        }

        mutating func skipSpace() {
            while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
        }

        mutating func parseValue(depth: Int) throws -> Literal {
            guard depth <= Npy.maxNesting else { throw fail("values nested too deeply") }
            skipSpace()
            guard pos < bytes.count else { throw fail("the header ends where a value was expected") }
            let c = bytes[pos]
            switch c {
            case UInt8(ascii: "{"):
                return try parseDict(depth: depth)
            case UInt8(ascii: "("), UInt8(ascii: "["):
                return try parseTupleOrList(depth: depth)
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                return .string(try parseString(quote: c))
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."):
                return try parseNumber()
            default:
                return try parseName()
            }
        }

        /// `{key: value, ...}` with string keys, starting at the `{`.
        mutating func parseDict(depth: Int) throws -> Literal {
            pos += 1
            var entries: [(String, Literal)] = []
            while true {
                skipSpace()
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(entries) }
                guard case .string(let key) = try parseValue(depth: depth + 1) else { throw fail("dict keys must be strings") }
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':' after a dict key") }
                pos += 1
                let value = try parseValue(depth: depth + 1)
                if entries.contains(where: { $0.0 == key }) { throw fail("duplicate key '\(key)'") }
                entries.append((key, value))
                skipSpace()
                guard pos < bytes.count else { throw fail("the header ends inside a dict") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(entries) }
                throw fail("expected ',' or '}' in a dict")
            }
        }

        /// `(a, b, ...)` or `[a, b, ...]`, starting at the opening bracket.
        mutating func parseTupleOrList(depth: Int) throws -> Literal {
            let close = bytes[pos] == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
            pos += 1
            var items: [Literal] = []
            var sawComma = false
            while true {
                skipSpace()
                if pos < bytes.count, bytes[pos] == close { pos += 1; break }
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard pos < bytes.count else { throw fail("the header ends inside a tuple or list") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; sawComma = true; continue }
                if bytes[pos] == close { pos += 1; break }
                throw fail("expected ',' or '\(Character(UnicodeScalar(close)))'")
            }
            if close == UInt8(ascii: "]") { return .list(items) }
            // In Python "(3)" is just 3 in parentheses; only "(3,)" is a tuple.
            if items.count == 1 && !sawComma { return items[0] }
            return .tuple(items)
        }

        /// `True`, `False` or `None`; any other name (or no name at all) is an error.
        mutating func parseName() throws -> Literal {
            let start = pos
            while pos < bytes.count, isNameByte(bytes[pos]) { pos += 1 }
            let name = String(decoding: bytes[start..<pos], as: UTF8.self)
            switch name {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            case "": throw fail("unexpected character 0x\(String(bytes[start], radix: 16))")
            default:
                if pos == bytes.count { throw fail("the header ends inside the name '\(name)'") }
                pos = start
                throw fail("unexpected name '\(name)'")
            }
        }

        func isNameByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
        }

        mutating func parseString(quote: UInt8) throws -> String {
            pos += 1
            var out: [UInt8] = []
            while true {
                guard pos < bytes.count else { throw fail("the header ends inside a string") }
                let b = bytes[pos]
                pos += 1
                if b == quote { break }
                if b == 0x0A { throw fail("a string runs past the end of the line") }
                if b == UInt8(ascii: "\\") {
                    guard pos < bytes.count else { throw fail("the header ends inside a string") }
                    let e = bytes[pos]
                    pos += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
                    default: out += [UInt8(ascii: "\\"), e]  // Python keeps unknown escapes as they are
                    }
                } else {
                    out.append(b)
                }
            }
            if utf8 { return String(decoding: out, as: UTF8.self) }
            return String(String.UnicodeScalarView(out.map { UnicodeScalar($0) }))  // latin-1
        }

        mutating func parseNumber() throws -> Literal {
            let start = pos
            if bytes[pos] == UInt8(ascii: "-") || bytes[pos] == UInt8(ascii: "+") { pos += 1 }
            let digitsStart = pos
            while pos < bytes.count, isNameByte(bytes[pos]) || bytes[pos] == UInt8(ascii: ".") { pos += 1 }
            var text = String(decoding: bytes[start..<pos], as: UTF8.self)
            var digits = bytes[digitsStart..<pos]
            // Python 2 wrote long integers with an 'L' suffix ("3L"); numpy still reads those files.
            if let last = digits.last, last == UInt8(ascii: "L") || last == UInt8(ascii: "l") {
                digits = digits.dropLast()
                text.removeLast()
            }
            guard !digits.isEmpty else { pos = start; throw fail("expected a number") }
            if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                // Int("+5") and Int("-5") both parse; nil here means too large for an Int.
                return .int(Int(text), text)
            }
            return .other(text)
        }
    }
}
