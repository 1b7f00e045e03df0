import Foundation

/// Hugging Face's safetensors format (https://github.com/huggingface/safetensors, README "Format"):
/// checkpoints that PyTorch, numpy and every framework of that ecosystem load, and that loading never
/// runs code from (DESIGN §4, §8).
///
/// Layout: 8 bytes N (unsigned little-endian 64-bit), N bytes of UTF-8 JSON header, then the byte
/// buffer (the rest of the file). The header is an object
/// `{NAME: {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ..., "__metadata__": {string: string}}`
/// with offsets relative to the start of the buffer; data little-endian, C order, no strides.
///
/// The reader trusts nothing in a file, as the reference implementation does not: the header length
/// is at most 100 MB (the reference's limit) and within the file; the header is valid UTF-8, starts
/// with '{' and is a JSON object without duplicate keys; every dtype is known; shapes are non-negative
/// and their element count cannot overflow; END − BEGIN is the element count × the dtype's size; and
/// the tensors' byte ranges, sorted, tile the buffer exactly (no overlaps, no gaps, no bytes after the
/// last one: the spec forbids unindexed bytes, which would allow polyglot files). Every check passes
/// before any tensor is allocated, so nothing is allocated for data the file does not hold. Every
/// problem is a DBMError naming the file. Extra keys in a tensor's entry are ignored, as the reference
/// implementation ignores them.
public enum Safetensors {
    /// The reference implementation's limit on the header (MAX_HEADER_SIZE), against hostile files.
    public static let maxHeaderLength = 100_000_000
    static let metadataKey = "__metadata__"
    /// Elements converted per chunk for the types that are widened (F16, BF16, integers, BOOL).
    static let chunkElements = 1 << 16

    /// The element types of the format. Reading: F32, F16 and BF16 give Float32 tensors (exactly:
    /// every F16 and BF16 value, subnormals, ±Inf and NaN included, is a Float32 value); F64 and the
    /// integer and BOOL types give Float64 tensors (64-bit integers beyond 2⁵³ round). The 8-, 6- and
    /// 4-bit float types and complex numbers are known but refused. Writing: F32 and F64.
    public enum ElementType: String, CaseIterable, Sendable {
        case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .F64, .I64, .U64: return 8
            case .F32, .I32, .U32: return 4
            case .F16, .BF16, .I16, .U16: return 2
            case .I8, .U8, .BOOL: return 1
            }
        }

        /// The dtype of the tensor a file's elements of this type load into.
        public var tensorType: DType {
            switch self {
            case .F32, .F16, .BF16: return .float32
            default: return .float64
            }
        }
    }

    /// dtype names of the format that this reader does not convert (sub-byte and 8-bit floats, complex).
    static let unsupportedTypes: Set<String> = ["F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", "C128"]

    /// One tensor as the header describes it; offsets are relative to the byte buffer.
    public struct Entry: Sendable {
        public let name: String
        public let type: ElementType
        public let shape: [Int]
        public let begin: Int
        public let end: Int
    }

    /// A checked header: what a reader needs to read the tensors one at a time (`readTensor`), so that
    /// a model's peak memory is its largest tensor, not the file.
    public struct Header: Sendable {
        public let path: String
        /// The file's size when the header was read: a tensor read later refuses a file that changed.
        public let fileSize: Int
        /// The file offset of the byte buffer (8 + the header's length).
        public let dataStart: Int
        /// The tensors in the order of their data offsets.
        public let entries: [Entry]
        public let metadata: [String: String]
    }

    // ------------------------------------------------------------------ reading

    /// Reads every tensor of a safetensors file, in the order of their data offsets, and the
    /// `__metadata__` strings (empty when the file has none).
    public static func read(path: String) throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        let file = try InputFile(path: path)
        defer { file.close() }
        let header = try readHeader(file, path: path)
        let tensors = try header.entries.map { e in
            (e.name, try readTensor(from: file, type: e.type, shape: e.shape, offset: header.dataStart + e.begin, path: path, name: e.name))
        }
        return (tensors, header.metadata)
    }

    /// Reads and checks the header only (no tensor data is read).
    public static func readHeader(path: String) throws -> Header {
        let file = try InputFile(path: path)
        defer { file.close() }
        return try readHeader(file, path: path)
    }

    /// Reads one tensor of `header`'s file (streamed with pread, never mapped). The file must still have
    /// the size it had when the header was read: a file replaced or truncated since is refused.
    public static func readTensor(_ entry: Entry, of header: Header) throws -> Tensor {
        try readTensor(path: header.path, type: entry.type, shape: entry.shape, offset: header.dataStart + entry.begin,
                       fileSize: header.fileSize, name: entry.name)
    }

    /// Reads one tensor of `type` and `shape` at the file offset `offset` of a file expected to have
    /// `fileSize` bytes (what a header read earlier gave). Every number is checked against the file.
    public static func readTensor(path: String, type: ElementType, shape: [Int], offset: Int, fileSize: Int,
                                  name: String) throws -> Tensor {
        let file = try InputFile(path: path)
        defer { file.close() }
        guard file.size == fileSize else {
            throw DBMError("file '\(path)' changed since its header was read (it had \(fileSize) bytes, it has \(file.size))")
        }
        guard shape.allSatisfy({ $0 >= 0 }), let count = try? checkedCount(shape) else {
            throw DBMError("file '\(path)': tensor \(quoted(name)): shape \(formatShape(shape)) is not a valid shape")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard !overflow, offset >= 0, offset <= fileSize, bytes <= fileSize - offset else {
            throw DBMError("file '\(path)': tensor \(quoted(name)): \(formatShape(shape)) of \(type.rawValue) at byte \(offset) "
                + "reaches past the end of the file (\(fileSize) bytes)")
        }
        return try readTensor(from: file, type: type, shape: shape, offset: offset, path: path, name: name)
    }

    private static func readTensor(from file: InputFile, type: ElementType, shape: [Int], offset: Int,
                                   path: String, name: String) throws -> Tensor {
        let t = try Tensor(shape: shape, dtype: type.tensorType, zeroed: false)
        try readElements(from: file, at: offset, type: type, count: t.count, into: t.storage.bytes, path: path, name: name)
        return t
    }

    /// Reads and checks the header of an open file.
    private static func readHeader(_ file: InputFile, path: String) throws -> Header {
        let headerLength = try readHeaderLength(file, path: path)
        let items = try readHeaderObject(file, length: headerLength, path: path)
        let bufferStart = 8 + headerLength
        let bufferSize = file.size - bufferStart
        let (unsorted, metadata) = try parseHeaderItems(items, bufferSize: bufferSize, path: path)
        let entries = try sortedTilingBuffer(unsorted, bufferSize: bufferSize, path: path)
        return Header(path: path, fileSize: file.size, dataStart: bufferStart, entries: entries, metadata: metadata)
    }

    /// Reads the 8-byte little-endian header length and checks it against the file's size.
    private static func readHeaderLength(_ file: InputFile, path: String) throws -> Int {
        let size = file.size
        guard size >= 8 else {
            throw DBMError("file '\(path)' is not a safetensors file: it has \(size) bytes, fewer than the 8 of the header length")
        }
        var prefix = [UInt8](repeating: 0, count: 8)
        let got = try prefix.withUnsafeMutableBytes { try file.read(at: 0, into: $0.baseAddress!, count: 8) }
        guard got == 8 else { throw DBMError("file '\(path)' is truncated (it shrank while reading)") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(prefix[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderLength) else {
            throw DBMError("file '\(path)' is not a safetensors file: its header length field says \(n) bytes, "
                + "more than the format's limit of \(maxHeaderLength)")
        }
        let headerLength = Int(n)
        guard headerLength <= size - 8 else {
            throw DBMError("file '\(path)' is truncated or not a safetensors file: its header length field says \(headerLength) bytes, "
                + "but only \(size - 8) follow")
        }
        guard headerLength >= 2 else {
            throw DBMError("file '\(path)' is not a safetensors file: its header of \(headerLength) bytes cannot hold a JSON object")
        }
        return headerLength
    }

    /// Reads the header's `length` bytes of UTF-8 JSON and returns the members of its top-level object.
    private static func readHeaderObject(_ file: InputFile, length headerLength: Int, path: String) throws -> [(String, JSONValue)] {
        var headerBytes = [UInt8](repeating: 0, count: headerLength)
        let read = try headerBytes.withUnsafeMutableBytes { try file.read(at: 8, into: $0.baseAddress!, count: headerLength) }
        guard read == headerLength else { throw DBMError("file '\(path)' is truncated (it shrank while reading)") }
        guard headerBytes[0] == UInt8(ascii: "{") else {
            throw DBMError("file '\(path)' is not a safetensors file: its header does not start with '{'")
        }
        guard let text = String(validating: headerBytes, as: UTF8.self) else {
            throw DBMError("file '\(path)': the safetensors header is not valid UTF-8")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch let e as DBMError {
            throw DBMError("file '\(path)': the safetensors header is not valid JSON: \(e.message)")
        }
        guard case .object(let items) = json else {
            throw DBMError("file '\(path)': the safetensors header is not a JSON object")
        }
        return items
    }

    /// Splits the header's members into tensor entries (in header order) and the metadata,
    /// rejecting repeated keys.
    private static func parseHeaderItems(_ items: [(String, JSONValue)], bufferSize: Int,
                                         path: String) throws -> (entries: [Entry], metadata: [String: String]) {
        var seen = Set<String>()
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (key, value) in items {
            guard seen.insert(key).inserted else {
                throw DBMError("file '\(path)': the safetensors header repeats the key \(quoted(key))")
            }
            if key == metadataKey {
                metadata = try parseMetadata(value, path: path)
            } else {
                entries.append(try parseEntry(key, value, bufferSize: bufferSize, path: path))
            }
        }
        return (entries, metadata)
    }

    /// The entries in order of their byte ranges, which must tile the buffer: begin == previous end.
    /// (Empty tensors have begin == end and take no bytes.)
    private static func sortedTilingBuffer(_ unsorted: [Entry], bufferSize: Int, path: String) throws -> [Entry] {
        let order = unsorted.indices.sorted { (unsorted[$0].begin, unsorted[$0].end, $0) < (unsorted[$1].begin, unsorted[$1].end, $1) }
        let entries = order.map { unsorted[$0] }
        var covered = 0
        var previous: String? = nil
        for e in entries {
            if e.begin < covered {
                throw DBMError("file '\(path)': the data of tensor \(quoted(e.name)) (bytes \(e.begin)..<\(e.end)) overlaps "
                    + "that of tensor \(quoted(previous ?? "")) (ending at byte \(covered))")
            }
            if e.begin > covered {
                throw DBMError("file '\(path)': bytes \(covered)..<\(e.begin) of the data buffer belong to no tensor "
                    + "(the format allows no gaps before tensor \(quoted(e.name)))")
            }
            covered = e.end
            previous = e.name
        }
        if covered != bufferSize {
            throw DBMError("file '\(path)': the data buffer has \(bufferSize) bytes but its tensors cover only \(covered) "
                + "(the format allows no bytes after the last tensor)")
        }
        return entries
    }

    static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        // null (what a writer serializing an absent map may produce) means none, as in the reference implementation.
        if case .null = value { return [:] }
        guard case .object(let pairs) = value else {
            throw DBMError("file '\(path)': the safetensors '__metadata__' is \(kindName(value)), expected an object of strings")
        }
        var out: [String: String] = [:]
        for (k, v) in pairs {
            guard case .string(let s) = v else {
                throw DBMError("file '\(path)': the safetensors '__metadata__' value of \(quoted(k)) is \(kindName(v)), expected a string")
            }
            guard out.updateValue(s, forKey: k) == nil else {
                throw DBMError("file '\(path)': the safetensors '__metadata__' repeats the key \(quoted(k))")
            }
        }
        return out
    }

    static func parseEntry(_ name: String, _ value: JSONValue, bufferSize: Int, path: String) throws -> Entry {
        func fail(_ problem: String) -> DBMError { DBMError("file '\(path)': tensor \(quoted(name)): \(problem)") }
        guard case .object(let pairs) = value else { throw fail("its header entry is \(kindName(value)), expected an object") }
        var keys = Set<String>()
        for (k, _) in pairs where !keys.insert(k).inserted { throw fail("its header entry repeats the key \(quoted(k))") }

        guard let dtypeValue = value["dtype"] else { throw fail("its header entry has no 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else { throw fail("'dtype' is \(kindName(dtypeValue)), expected a string") }
        guard let type = ElementType(rawValue: dtypeName) else {
            let supported = ElementType.allCases.map(\.rawValue).joined(separator: ", ")
            if unsupportedTypes.contains(dtypeName) {
                throw fail("dtype \(quoted(dtypeName)) is not supported (supported: \(supported))")
            }
            throw fail("unknown dtype \(quoted(dtypeName)) (supported: \(supported))")
        }

        guard let shapeValue = value["shape"] else { throw fail("its header entry has no 'shape'") }
        guard case .array(let sizes) = shapeValue else { throw fail("'shape' is \(kindName(shapeValue)), expected an array of sizes") }
        guard sizes.count <= Npy.maxDimensions else {
            throw fail("shape has \(sizes.count) dimensions, at most \(Npy.maxDimensions) are supported")
        }
        var shape: [Int] = []
        for s in sizes {
            guard case .integer(let d) = s else {
                if case .number(let x) = s, x == x.rounded(), x > 0 { throw fail("shape size \(x) is too large") }
                throw fail("the shape holds \(kindName(s)), expected non-negative integer sizes")
            }
            guard d >= 0 else { throw fail("shape sizes must be non-negative, the header gives \(d)") }
            shape.append(d)
        }
        // Both the element count and the product of the non-zero sizes (what the strides of a
        // tensor with a zero size still multiply) must fit in an Int.
        guard let count = try? checkedCount(shape), (try? checkedCount(shape.map { max($0, 1) })) != nil else {
            throw fail("shape \(formatShape(shape)) has too many elements")
        }

        guard let offsetsValue = value["data_offsets"] else { throw fail("its header entry has no 'data_offsets'") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw fail("'data_offsets' is \(kindName(offsetsValue)), expected an array [begin, end]")
        }
        var bounds: [Int] = []
        for o in offsets {
            guard case .integer(let v) = o, v >= 0 else {
                throw fail("'data_offsets' holds \(kindName(o)), expected non-negative integer byte offsets")
            }
            bounds.append(v)
        }
        let (begin, end) = (bounds[0], bounds[1])
        guard begin <= end else { throw fail("'data_offsets' [\(begin), \(end)] ends before it begins") }
        guard end <= bufferSize else {
            throw fail("'data_offsets' [\(begin), \(end)] reach past the end of the data buffer (\(bufferSize) bytes): "
                + "the file is truncated or its header is wrong")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard !overflow, bytes == end - begin else {
            throw fail("shape \(formatShape(shape)) of \(type.rawValue) needs \(overflow ? "more than 2^63" : String(bytes)) bytes, "
                + "but 'data_offsets' [\(begin), \(end)] give \(end - begin)")
        }
        return Entry(name: name, type: type, shape: shape, begin: begin, end: end)
    }

    /// Reads `count` elements of `type` at file offset `offset` into dest (Float32 for F32, F16 and
    /// BF16; Float64 otherwise), converting from little-endian, in chunks (one chunk buffer, however large
    /// the tensor).
    private static func readElements(from file: InputFile, at offset: Int, type: ElementType, count: Int,
                                     into dest: UnsafeMutableRawPointer, path: String, name: String) throws {
        func readFully(_ p: UnsafeMutableRawPointer, _ bytes: Int, at position: Int) throws {
            let n = try file.read(at: position, into: p, count: bytes)
            guard n == bytes else { throw DBMError("file '\(path)' is truncated in tensor \(quoted(name)) (it shrank while reading)") }
        }
        if type == .F32 || type == .F64 {
            try readFully(dest, count * type.size, at: offset)
            if Npy.hostIsBigEndian {
                for i in 0..<count {
                    if type == .F32 { dest.storeBytes(of: dest.load(fromByteOffset: i * 4, as: UInt32.self).byteSwapped, toByteOffset: i * 4, as: UInt32.self) }
                    else { dest.storeBytes(of: dest.load(fromByteOffset: i * 8, as: UInt64.self).byteSwapped, toByteOffset: i * 8, as: UInt64.self) }
                }
            }
            return
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * type.size, alignment: 16)
        defer { buffer.deallocate() }
        let floats = dest.assumingMemoryBound(to: Float.self)
        let doubles = dest.assumingMemoryBound(to: Double.self)
        var done = 0
        while done < count {
            let n = min(chunkElements, count - done)
            try readFully(buffer, n * type.size, at: offset + done * type.size)
            switch type {
            case .F16: widenHalf(buffer, floats + done, n)
            case .BF16: widenBFloat16(buffer, floats + done, n)
            case .BOOL:
                let o = doubles + done
                for i in 0..<n { o[i] = buffer.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
            case .I8: widen(buffer, doubles + done, n, Int8.self)
            case .I16: widen(buffer, doubles + done, n, Int16.self)
            case .I32: widen(buffer, doubles + done, n, Int32.self)
            case .I64: widen(buffer, doubles + done, n, Int64.self)
            case .U8: widen(buffer, doubles + done, n, UInt8.self)
            case .U16: widen(buffer, doubles + done, n, UInt16.self)
            case .U32: widen(buffer, doubles + done, n, UInt32.self)
            case .U64: widen(buffer, doubles + done, n, UInt64.self)
            case .F32, .F64: break  // read directly above
            }
            done += n
        }
    }

    /// bfloat16 → Float32: bfloat16 is the upper half of a float32, so widening is a shift, exact for every
    /// value. This plain loop is vectorised by the compiler (measured: 0.08 ns per element, the same as
    /// an explicit SIMD8 version).
    static func widenBFloat16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
        }
    }

    /// IEEE half → Float32, exact for every value (subnormals, ±Inf, NaN), eight at a time. Float(Float16)
    /// is a library call per element on baseline x86-64 (no F16C): 4.7 ns per element against 0.33 here.
    /// The magnitude's bits shifted into a float32's place are the value times 2⁻¹¹²: multiplying by 2¹¹²
    /// rescales normals and subnormals exactly; a half Inf or NaN lands at or above 2¹⁶ and gets the
    /// all-ones exponent back (its mantissa kept); then the sign.
    static func widenHalf(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        if !Npy.hostIsBigEndian {
            let out = UnsafeMutableRawPointer(dst)
            while i + 8 <= n {
                let h = SIMD8<UInt32>(truncatingIfNeeded: src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
                let f = unsafeBitCast((h & 0x7fff) &<< 13, to: SIMD8<Float>.self) * 0x1p112
                var bits = unsafeBitCast(f, to: SIMD8<UInt32>.self)
                bits.replace(with: bits | 0x7f80_0000, where: f .>= 65536)
                bits |= (h & 0x8000) &<< 16
                out.storeBytes(of: bits, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
                i += 8
            }
        }
        while i < n {
            dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
            i += 1
        }
    }

    private static func widen<T: FixedWidthInteger>(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Double>, _ n: Int, _: T.Type) {
        let w = MemoryLayout<T>.size
        for i in 0..<n { dst[i] = Double(T(littleEndian: src.loadUnaligned(fromByteOffset: i * w, as: T.self))) }
    }

    // ------------------------------------------------------------------ writing

    /// Writes tensors (F32 for float32 tensors, F64 for float64) in the given order, with the
    /// metadata strings (keys sorted; no `__metadata__` entry when empty). The header is padded with
    /// spaces to a multiple of 8 bytes, so the buffer starts 8-byte aligned. The file is written to a
    /// temporary name next to `path` and renamed over it.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], path: String) throws {
        var names = Set<String>()
        for (name, _) in tensors {
            guard name != metadataKey else {
                throw DBMError("cannot write '\(path)': '\(metadataKey)' is reserved for the metadata and cannot name a tensor")
            }
            guard names.insert(name).inserted else { throw DBMError("cannot write '\(path)': two tensors are named \(quoted(name))") }
        }
        let header = headerBytes(tensors.map { ($0.0, $0.1.dtype, $0.1.shape) }, metadata: metadata)
        guard header.count - 8 <= maxHeaderLength else {
            throw DBMError("cannot write '\(path)': the header would have \(header.count - 8) bytes, more than the format's limit of \(maxHeaderLength)")
        }
        let out = try AtomicOutputFile(path: path)
        do {
            try header.withUnsafeBytes { try out.write($0.baseAddress!, $0.count) }
            for (_, t) in tensors {
                let src = try t.contiguous()
                if src.count == 0 { continue }
                if Npy.hostIsBigEndian {
                    // Swap into a copy, one tensor at a time (never on the little-endian hosts this project runs on).
                    let c = try src.copy()
                    let w = c.dtype.byteSize, p = c.storage.bytes
                    for i in 0..<c.count {
                        if w == 4 { p.storeBytes(of: p.load(fromByteOffset: i * 4, as: UInt32.self).byteSwapped, toByteOffset: i * 4, as: UInt32.self) }
                        else { p.storeBytes(of: p.load(fromByteOffset: i * 8, as: UInt64.self).byteSwapped, toByteOffset: i * 8, as: UInt64.self) }
                    }
                    try out.write(c.storage.bytes, c.byteCount)
                } else {
                    try out.write(src.storage.bytes + src.offset * src.dtype.byteSize, src.byteCount)
                }
            }
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
    }

    /// The 8-byte length and the header JSON for tensors of these dtypes and shapes, laid out one
    /// after the other in the given order, padded with spaces to a multiple of 8 bytes.
    public static func headerBytes(_ tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String]) -> [UInt8] {
        var items: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            items.append((metadataKey, .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for (name, dtype, shape) in tensors {
            let bytes = shape.reduce(1, *) * dtype.byteSize
            items.append((name, .object([
                ("dtype", .string(dtype == .float32 ? "F32" : "F64")),
                ("shape", .array(shape.map { .integer($0) })),
                ("data_offsets", .array([.integer(offset), .integer(offset + bytes)])),
            ])))
            offset += bytes
        }
        var json = Array(JSONValue.object(items).encoded().utf8)
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(i)))) }
        return out + json
    }

    // ------------------------------------------------------------------ messages

    /// A name in a message: JSON-quoted, so control characters and quotes in hostile names stay visible.
    static func quoted(_ s: String) -> String {
        let short = s.count > 80 ? String(s.prefix(80)) + "..." : s
        return JSONValue.string(short).encoded()
    }

    static func kindName(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return "the number \(i)"
        case .number(let d): return "the number \(d)"
        case .string(let s): return "the string \(quoted(s))"
        case .array(let a): return "an array of \(a.count)"
        case .object: return "an object"
        }
    }
}
