import Foundation
import Testing
import DBMCore

fileprivate func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

fileprivate func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// A safetensors file from its parts: the 8-byte length (of the header unless given), the header text, the buffer.
fileprivate func stFile(_ header: String, _ data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = length ?? UInt64(h.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
}

/// Splits a file into header text and buffer (assumes a sane length field).
fileprivate func stParts(_ file: [UInt8]) -> (header: String, data: [UInt8]) {
    var n = 0
    for i in 0..<8 { n |= Int(file[i]) << (8 * i) }
    return (String(decoding: file[8..<8 + n], as: UTF8.self), Array(file[(8 + n)...]))
}

/// Reads and classifies: the tensors, or the DBMError's message. Any other error is a test failure.
fileprivate func tryRead(_ path: String) -> Result<[(name: String, tensor: Tensor)], DBMError>? {
    do { return .success(try Safetensors.read(path: path).tensors) }
    catch let e as DBMError { return .failure(e) }
    catch { Issue.record("unexpected error type \(type(of: error)): \(error)"); return nil }
}

fileprivate func littleEndianWords<T: FixedWidthInteger>(_ bytes: [UInt8], _: T.Type) -> [T] {
    bytes.withUnsafeBytes { raw in
        (0..<bytes.count / MemoryLayout<T>.size).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
    }
}

@Suite("Safetensors") struct SafetensorsTests {

    // ------------------------------------------------------------------ Python writes, we read

    @Test func readsWhatPythonSafetensorsWrites() throws {
        let script = #"""
import sys, json, struct, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
rng = np.random.default_rng(3)
t = {}
t['w.f32'] = rng.standard_normal((3, 4)).astype('<f4')
t['w.f64'] = rng.standard_normal((5, 2))
# float16: subnormals (the smallest is 2^-24), the largest finite, ±Inf, NaN, -0.0
t['h.f16'] = np.array([[1.5, -2.0, 2.0**-24, 3 * 2.0**-24], [65504, -np.inf, np.inf, -0.0], [np.nan, 0.1, 1e-5, -6.1e-5]], dtype='<f2')
t['i.i8'] = np.array([-128, -1, 0, 127], dtype='i1')
t['i.i16'] = np.array([-32768, 32767], dtype='<i2')
t['i.i32'] = rng.integers(-2**31, 2**31, size=(2, 3), dtype='<i4')
t['i.i64'] = np.array([-2**53, 2**53, -1, 123456789012345], dtype='<i8')
t['i.u8'] = np.array([0, 200, 255], dtype='u1')
t['i.u16'] = np.array([0, 65535], dtype='<u2')
t['i.u32'] = np.array([0, 2**32 - 1], dtype='<u4')
t['b.bool'] = np.array([[True, False], [False, True]])
t['s.scalar'] = np.array(3.25, dtype='<f4')
t['e.empty'] = np.zeros((0, 3), dtype='<f4')
t['long'] = rng.standard_normal(150000).astype('<f2')   # more than one conversion chunk
save_file(t, f'{d}/py.safetensors', metadata={'n_layer': '4', 'vocab': 'ab\n"c\u00e9'})

# bfloat16 is not a numpy type: write the file by hand, per the spec, from float32 bit patterns.
f = np.array([1.0, -2.5, 3.0e38, -np.inf, np.inf, np.nan, 2.0**-133, -0.0, 2.0**-126, 0.1], dtype='<f4')
bf = (f.view('<u4') >> 16).astype('<u2')
h = json.dumps({'bf': {'dtype': 'BF16', 'shape': [2, 5], 'data_offsets': [0, bf.nbytes]}}).encode()
open(f'{d}/bf16.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + bf.tobytes())
(bf.astype('<u4') << 16).view('<f4').tofile(f'{d}/bf.expect')

# The order of the tensors by offset, as the file lays them out.
raw = open(f'{d}/py.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
order = sorted((k for k in hdr if k != '__metadata__'), key=lambda k: hdr[k]['data_offsets'])
print('ORDER', ' '.join(order))
for name, a in t.items():
    f32 = a.dtype.kind == 'f' and a.dtype.itemsize <= 4
    a.astype('<f4' if f32 else '<f8').tofile(f'{d}/{name}.expect')
    print('CASE', name, 'float32' if f32 else 'float64', ','.join(map(str, a.shape)))
print('VERDICT OK')
"""#
        try withTempDir { dir in
            let (status, output) = try runPython(script, [dir])
            try #require(status == 0 && output.contains("VERDICT OK"), "python failed: \(output)")
            let (tensors, metadata) = try Safetensors.read(path: "\(dir)/py.safetensors")
            #expect(metadata == ["n_layer": "4", "vocab": "ab\n\"c\u{e9}"])
            let order = output.split(separator: "\n").first { $0.hasPrefix("ORDER ") }!.split(separator: " ").dropFirst().map(String.init)
            #expect(tensors.map(\.name) == order, "tensors in the order of their offsets")
            let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
            var checked = 0
            for line in output.split(separator: "\n") where line.hasPrefix("CASE ") {
                let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                let name = f[1], dtype = f[2]
                let shape = f.count > 3 && !f[3].isEmpty ? f[3].split(separator: ",").map { Int($0)! } : []
                let t = try #require(byName[name], "\(name) missing")
                #expect(t.dtype.rawValue == dtype && t.shape == shape, "\(name): \(t.dtype) \(t.shape)")
                let expect = try readBytes("\(dir)/\(name).expect")
                // Bit patterns: exact, with subnormals, -0.0, ±Inf; NaN compared as NaN.
                if t.dtype == .float32 {
                    let got = t.toFloats(), want = littleEndianWords(expect, UInt32.self).map(Float.init(bitPattern:))
                    #expect(got.count == want.count && zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                            "\(name): values")
                } else {
                    let got = t.toDoubles(), want = littleEndianWords(expect, UInt64.self).map(Double.init(bitPattern:))
                    #expect(got.count == want.count && zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                            "\(name): values")
                }
                checked += 1
            }
            #expect(checked == 14)
            #expect(byName["h.f16"]!.toFloats()[2] == 0x1p-24, "the smallest float16 subnormal is exact")

            let bf = try Safetensors.read(path: "\(dir)/bf16.safetensors").tensors
            #expect(bf.count == 1 && bf[0].name == "bf" && bf[0].tensor.shape == [2, 5] && bf[0].tensor.dtype == .float32)
            let want = littleEndianWords(try readBytes("\(dir)/bf.expect"), UInt32.self)
            let got = bf[0].tensor.toFloats()
            #expect(zip(got, want).allSatisfy { $0.bitPattern == $1 || ($0.isNaN && Float(bitPattern: $1).isNaN) }, "BF16 values")
            #expect(got[6] == 0x1p-133 && got[7].sign == .minus && got[3] == -.infinity, "BF16 subnormal, -0.0, -Inf exact")
        }
    }

    // ------------------------------------------------------------------ we write, Python reads

    @Test func pythonSafetensorsReadsWhatWeWrite() throws {
        let g = Generator(seed: 17)
        var special = try Tensor.randn([3, 4], generator: g).toDoubles()
        special[0] = .infinity; special[1] = -0.0; special[2] = 1e-40; special[3] = .nan
        let matrix = try Tensor.randn([3, 5], dtype: .float64, generator: g)
        let tensors: [(String, Tensor)] = [
            ("transformer.h.0.attn.c_attn.weight", try Tensor.randn([12, 4], generator: g)),
            ("special", try Tensor.from(special, shape: [3, 4], dtype: .float32)),
            ("a.f64", try Tensor.randn([7], dtype: .float64, generator: g)),
            ("transposed", try matrix.t()),                                   // non-contiguous
            ("window", try Tensor.randn([4, 6], generator: g).narrow(1, 2, 3)), // non-contiguous with an offset
            ("scalar", try Tensor.from([2.5], shape: [], dtype: .float64)),
            ("empty", try Tensor(shape: [0, 3])),
            ("optim.m.transformer.h.0.attn.c_attn.weight", try Tensor.randn([12, 4], generator: g)),
            ("ünïcode \"name\"", try Tensor.randn([2], generator: g)),
        ]
        let metadata = ["n_layer": "4", "vocab": "\n !\"abc\u{e9}", "empty": ""]
        let script = #"""
import sys, json, struct, numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open
d = sys.argv[1]
path = f'{d}/ours.safetensors'
problems = []
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
if n % 8: problems.append(f'header length {n} not a multiple of 8')
text = raw[8:8 + n].decode('utf-8')
if text[0] != '{': problems.append('header does not start with {')
if text != text.rstrip(' ') and text.rstrip(' ')[-1] != '}': problems.append('padding is not trailing spaces')
hdr = json.loads(text)
names = [k for k in hdr if k != '__metadata__']
want = [l.rstrip('\n') for l in open(f'{d}/names.txt', encoding='utf-8')]
if names != want: problems.append(f'names {names} != {want}')
end = 0
for k in names:
    e = hdr[k]
    if e['data_offsets'][0] != end: problems.append(f'{k}: offsets not contiguous')
    end = e['data_offsets'][1]
    size = {'F32': 4, 'F64': 8}[e['dtype']] * int(np.prod(e['shape'], dtype=np.int64))
    if end - e['data_offsets'][0] != size: problems.append(f'{k}: size')
if 8 + n + end != len(raw): problems.append('buffer not exactly covered')
with safe_open(path, framework='np') as f:
    md = f.metadata()
if md != json.load(open(f'{d}/metadata.json', encoding='utf-8')): problems.append(f'metadata {md}')
tensors = load_file(path)
for i, k in enumerate(want):
    a = tensors[k]
    e = np.fromfile(f'{d}/{i}.expect', dtype='<f8')
    dt, shape = open(f'{d}/{i}.shape').read().split(' ')
    shape = tuple(int(x) for x in shape.split(',') if x)
    if a.dtype.str != dt or a.shape != shape: problems.append(f'{k}: {a.dtype.str} {a.shape}')
    elif not np.array_equal(a.ravel().astype('<f8'), e, equal_nan=True) or not np.array_equal(np.signbit(a.ravel()), np.signbit(e)):
        problems.append(f'{k}: values')
print('PROBLEMS', problems)
print('VERDICT', 'FAIL' if problems else 'OK')
"""#
        try withTempDir { dir in
            let path = "\(dir)/ours.safetensors"
            try Safetensors.write(tensors, metadata: metadata, path: path)
            try (tensors.map(\.0).joined(separator: "\n") + "\n").write(toFile: "\(dir)/names.txt", atomically: false, encoding: .utf8)
            try JSONValue.object(metadata.map { ($0.key, .string($0.value)) }).encoded()
                .write(toFile: "\(dir)/metadata.json", atomically: false, encoding: .utf8)
            for (i, (_, t)) in tensors.enumerated() {
                try writeBytes(t.toDoubles().flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }, to: "\(dir)/\(i).expect")
                try "\(t.dtype == .float32 ? "<f4" : "<f8") \(t.shape.map(String.init).joined(separator: ","))"
                    .write(toFile: "\(dir)/\(i).shape", atomically: false, encoding: .utf8)
            }
            let (status, output) = try runPython(script, [dir])
            #expect(status == 0 && output.contains("VERDICT OK"), "python verdict:\n\(output)")

            // And our reader gives back the same names (in file order), values and metadata.
            let back = try Safetensors.read(path: path)
            #expect(back.tensors.map(\.name) == tensors.map(\.0))
            #expect(back.metadata == metadata)
            for ((_, a), (_, b)) in zip(tensors, back.tensors) {
                #expect(a.shape == b.shape && a.dtype == b.dtype && a.toDoubles().map(\.bitPattern) == b.toDoubles().map(\.bitPattern))
            }
            // Nothing left behind but the file and the test's own files.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }.isEmpty)
        }
    }

    @Test func writerRefusesReservedAndRepeatedNames() throws {
        try withTempDir { dir in
            let t = try Tensor.zeros([2])
            for (tensors, fragment) in [([("__metadata__", t)], "reserved"), ([("a", t), ("a", t)], "two tensors are named \"a\"")] {
                #expect { try Safetensors.write(tensors, path: "\(dir)/x.safetensors") } throws: { e in
                    (e as? DBMError)?.message.contains(fragment) == true
                }
            }
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "no temporary file left behind")
        }
    }

    /// The vectorised half-precision widening against Swift's Float(Float16) and the bfloat16 shift, on all
    /// 65,536 bit patterns (normals, subnormals, ±0, ±Inf, NaNs), through the reader; and the header-then-one-
    /// tensor path (readHeader, readTensor) gives what read gives.
    @Test func everyHalfAndBFloat16BitPatternWidensExactly() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-st-half-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bits = (0..<65536).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let header = #"{"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]},"b":{"dtype":"BF16","shape":[256,256],"data_offsets":[131072,262144]}}"#
        try writeBytes(stFile(header, bits + bits), to: path)
        let tensors = try Safetensors.read(path: path).tensors
        // Copies, made while the tensors surely live (Swift may end an array's life at its last use,
        // before a raw pointer taken from it is read).
        let (half, bf) = withExtendedLifetime(tensors) {
            (Array(UnsafeBufferPointer(start: tensors[0].tensor.pointer(Float.self), count: 65536)),
             Array(UnsafeBufferPointer(start: tensors[1].tensor.pointer(Float.self), count: 65536)))
        }
        // Bit for bit, except that a NaN need only stay a NaN of its sign (its payload may be quieted).
        func same(_ x: Float, _ y: Float) -> Bool { y.isNaN ? x.isNaN && x.sign == y.sign : x.bitPattern == y.bitPattern }
        var wrong: [String] = []
        for k in 0..<65536 {
            if !same(half[k], Float(Float16(bitPattern: UInt16(k)))) { wrong.append("F16 \(k): \(half[k])") }
            if !same(bf[k], Float(bitPattern: UInt32(k) << 16)) { wrong.append("BF16 \(k): \(bf[k])") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) bit patterns widened wrongly: \(wrong.prefix(8))")
        let h = try Safetensors.readHeader(path: path)
        #expect(h.entries.map(\.name) == ["h", "b"] && h.fileSize == 8 + header.utf8.count + 262144)
        let b = try Safetensors.readTensor(h.entries[1], of: h)
        let again = withExtendedLifetime(b) { Array(UnsafeBufferPointer(start: b.pointer(Float.self), count: 65536)) }
        #expect(b.shape == [256, 256] && (0..<65536).allSatisfy { same(again[$0], bf[$0]) })
    }

    @Test func headerLayout() {
        let layouts: [[(name: String, dtype: DType, shape: [Int])]] = [
            [], [("w", .float32, [3, 4])], [("a", .float64, []), ("bb", .float32, [0, 7]), ("c", .float32, [5])],
        ]
        let metadatas: [[String: String]] = [[:], ["k": "v"], ["vocab": "\u{0}\n\"é"]]
        for tensors in layouts {
            for metadata in metadatas {
                let bytes = Safetensors.headerBytes(tensors, metadata: metadata)
                var n = 0
                for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
                #expect(n == bytes.count - 8 && n % 8 == 0 && bytes[8] == UInt8(ascii: "{"))
                let text = String(decoding: bytes[8...], as: UTF8.self)
                #expect(text.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
                let json = try? JSONValue.parse(text)
                #expect(json?["__metadata__"] == (metadata.isEmpty ? nil : .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
            }
        }
    }

    // ------------------------------------------------------------------ hand-made malformed files

    @Test func malformedFilesGiveClearErrors() throws {
        // A valid file: two F32 tensors (2×2 and 3), 28 bytes of data.
        let data = [UInt8](repeating: 0, count: 28)
        func h(_ entries: String, meta: String? = nil) -> String {
            "{" + (meta.map { "\"__metadata__\":\($0)," } ?? "") + entries + "}"
        }
        let a = #""a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}"#
        let b = #""b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}"#
        let cases: [(String, [UInt8], String)] = [
            ("empty file", [], "fewer than the 8"),
            ("5 bytes", [1, 2, 3, 4, 5], "fewer than the 8"),
            ("header length 2^63", stFile(h(a + "," + b), data, length: 1 << 63), "more than the format's limit"),
            ("header length 100 MB + 1", stFile(h(a + "," + b), data, length: 100_000_001), "more than the format's limit"),
            ("header length past the end", stFile(h(a + "," + b), data, length: 1000), "but only"),
            ("header length 0", stFile("", []), "cannot hold a JSON object"),
            ("header length 1", stFile("{", []), "cannot hold a JSON object"),
            ("header not starting with {", stFile(" {}", []), "does not start with '{'"),
            ("an npy file", [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array("{'descr': '<f4'}".utf8), "more than the format's limit"),
            ("invalid UTF-8", stFile("{\"\u{1}\":1}", []).enumerated().map { $0.offset == 10 ? 0xFF : $0.element }, "not valid UTF-8"),
            ("truncated JSON", stFile("{\"a\":{\"dtype\":", []), "not valid JSON"),
            ("trailing text after JSON", stFile("{} x", []), "not valid JSON"),
            ("repeated tensor name", stFile(h(a + "," + a), data), "repeats the key \"a\""),
            ("entry not an object", stFile(#"{"a":3}"#, []), "is the number 3, expected an object"),
            ("no dtype", stFile(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, Array(data.prefix(8))), "no 'dtype'"),
            ("no shape", stFile(#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, Array(data.prefix(8))), "no 'shape'"),
            ("no data_offsets", stFile(#"{"a":{"dtype":"F32","shape":[2]}}"#, Array(data.prefix(8))), "no 'data_offsets'"),
            ("dtype not a string", stFile(#"{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, Array(data.prefix(4))), "expected a string"),
            ("unknown dtype", stFile(#"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, Array(data.prefix(4))), "unknown dtype \"F33\""),
            ("lower-case dtype", stFile(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, Array(data.prefix(4))), "unknown dtype \"f32\""),
            ("8-bit float dtype", stFile(#"{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#, Array(data.prefix(4))), "not supported"),
            ("shape not an array", stFile(#"{"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "expected an array of sizes"),
            ("negative size", stFile(#"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "non-negative"),
            ("fractional size", stFile(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}"#, Array(data.prefix(10))), "integer sizes"),
            ("size beyond Int", stFile(#"{"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "too large"),
            ("shape whose count overflows", stFile(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "too many elements"),
            ("empty shape whose strides overflow", stFile(#"{"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}}"#, []), "too many elements"),
            ("huge shape, tiny data", stFile(#"{"a":{"dtype":"F64","shape":[1000000000,1000000000],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "needs 8000000000000000000 bytes"),
            ("count × size overflows", stFile(#"{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "more than 2^63"),
            ("65 dimensions", stFile(#"{"a":{"dtype":"F32","shape":["# + Array(repeating: "1", count: 65).joined(separator: ",") + #"],"data_offsets":[0,4]}}"#, Array(data.prefix(4))), "at most 64"),
            ("data_offsets with one number", stFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, Array(data.prefix(4))), "expected an array [begin, end]"),
            ("data_offsets with three numbers", stFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, Array(data.prefix(8))), "expected an array [begin, end]"),
            ("negative offset", stFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, Array(data.prefix(4))), "non-negative integer byte offsets"),
            ("offset beyond Int", stFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e30]}}"#, Array(data.prefix(4))), "non-negative integer byte offsets"),
            ("offsets reversed", stFile(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, Array(data.prefix(4))), "ends before it begins"),
            ("offsets past the buffer (truncated file)", stFile(h(a + "," + b), Array(data.prefix(20))), "reach past the end of the data buffer (20 bytes)"),
            ("size disagrees with the shape", stFile(#"{"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}}"#, Array(data.prefix(16))), "needs 32 bytes"),
            ("overlapping tensors", stFile(h(a + #","b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}"#), Array(data.prefix(16))), "overlaps"),
            ("the same bytes twice", stFile(h(a + #","b":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}"#), Array(data.prefix(16))), "overlaps"),
            ("a gap between tensors", stFile(h(a + #","b":{"dtype":"F32","shape":[3],"data_offsets":[20,32]}"#), data + [0, 0, 0, 0]), "belong to no tensor"),
            ("a gap at the start", stFile(#"{"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}"#, Array(data.prefix(16))), "bytes 0..<4"),
            ("bytes after the last tensor", stFile(h(a + "," + b), data + [1, 2, 3]), "has 31 bytes but its tensors cover only 28"),
            ("metadata not an object", stFile(h(a + "," + b, meta: "[1]"), data), "'__metadata__' is an array of 1"),
            ("metadata value a number", stFile(h(a + "," + b, meta: #"{"n_layer":4}"#), data), "value of \"n_layer\" is the number 4"),
            ("metadata a string", stFile(h(a + "," + b, meta: #""pt""#), data), "'__metadata__' is the string \"pt\""),
            ("metadata key repeated", stFile(h(a + "," + b, meta: #"{"k":"1","k":"2"}"#), data), "repeats the key \"k\""),
        ]
        try withTempDir { dir in
            for (i, (what, bytes, fragment)) in cases.enumerated() {
                let path = "\(dir)/case\(i).safetensors"
                try writeBytes(bytes, to: path)
                switch tryRead(path) {
                case .success: Issue.record("\(what): loaded, expected an error containing '\(fragment)'")
                case .failure(let e):
                    #expect(e.message.contains(path) && e.message.contains(fragment), "\(what): \(e.message)")
                case nil: break
                }
            }
            // Not files at all.
            #expect(tryRead("\(dir)/missing.safetensors").map { if case .failure(let e) = $0 { e.message.contains("does not exist") } else { false } } == true)
            #expect(tryRead(dir).map { if case .failure(let e) = $0 { e.message.contains("not a regular file") } else { false } } == true)

            // And the edge cases the spec allows load: no tensors; an empty and a 0-rank tensor; extra keys in an entry.
            let valid: [(String, [UInt8], [[Int]])] = [
                ("no tensors", stFile("{}"), []),
                ("no tensors, padded, metadata only", stFile(#"{"__metadata__":{"a":"b"}}   "#), []),
                ("metadata null", stFile(#"{"__metadata__":null}"#), []),
                ("empty and scalar", stFile(#"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8)), [[0, 3], []]),
                ("an empty tensor with a huge other size", stFile(#"{"e":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}}"#), [[0, 4611686018427387904]]),
                ("extra keys", stFile(#"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4],"note":"x"}}"#, [1, 0, 0, 0]), [[1]]),
            ]
            for (what, bytes, shapes) in valid {
                try writeBytes(bytes, to: "\(dir)/valid.safetensors")
                switch tryRead("\(dir)/valid.safetensors") {
                case .success(let ts): #expect(ts.map(\.tensor.shape) == shapes, "\(what)")
                case .failure(let e): Issue.record("\(what): \(e.message)")
                case nil: break
                }
            }
        }
    }

    // ------------------------------------------------------------------ mutation fuzzing

    /// Valid starting points for the fuzzers: written by us, and by hand for the other dtypes.
    func fuzzBases(_ dir: String) throws -> [[UInt8]] {
        let g = Generator(seed: 2025)
        var bases: [[UInt8]] = []
        try Safetensors.write([("w", try Tensor.randn([3, 4], generator: g)), ("b", try Tensor.randn([4], dtype: .float64, generator: g)),
                               ("e", try Tensor(shape: [0, 2]))], metadata: ["n_layer": "2", "vocab": "abc"], path: "\(dir)/base.safetensors")
        bases.append(try readBytes("\(dir)/base.safetensors"))
        try Safetensors.write([("s", try Tensor.from([1], shape: [], dtype: .float64))], path: "\(dir)/base.safetensors")
        bases.append(try readBytes("\(dir)/base.safetensors"))
        let bytes = (0..<40).map { UInt8($0 * 7 & 0xFF) }
        bases.append(stFile(#"{"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"bf":{"dtype":"BF16","shape":[4],"data_offsets":[12,20]},"#
                            + #""i":{"dtype":"I32","shape":[2,2],"data_offsets":[20,36]},"t":{"dtype":"BOOL","shape":[4],"data_offsets":[36,40]}}"#, bytes))
        bases.append(stFile(#"{"__metadata__":{"format":"pt"},"u":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"l":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}"#,
                            Array(bytes.prefix(16))))
        return bases
    }

    @Test func mutatedFilesLoadOrThrowButNeverCrash() throws {
        try withTempDir { dir in
            let bases = try fuzzBases(dir)
            let path = "\(dir)/fuzz.safetensors"
            var tried = 0, loaded = 0, threw = 0
            func check(_ file: [UInt8]) throws {
                try writeBytes(file, to: path)
                tried += 1
                switch tryRead(path) {
                case .success(let ts):
                    loaded += 1
                    // Whatever loaded came from the file: at most 8 bytes of tensor per byte of file.
                    let bytes = ts.reduce(0) { $0 + $1.tensor.byteCount }
                    #expect(bytes <= 8 * file.count)
                case .failure: threw += 1
                case nil: break
                }
            }

            // 1. Truncation at every length through the header and a little beyond.
            for base in bases {
                let headerEnd = base.count - stParts(base).data.count
                for n in 0..<min(base.count, headerEnd + 16) { try check(Array(base.prefix(n))) }
            }

            // 2. Seeded random mutations: bytes, the length field, and edits of the header JSON.
            let g = Generator(seed: 7)
            var rng = SeededRandom(g)
            let huge = ["9223372036854775807", "4611686018427387904", "-1", "99999999999999999999", "1e3", "2.5", "0",
                        "4294967296", "\"3\"", "null", "[]", "1", "3", "12", "16", "40", "-0"]
            let dtypes = ["F32", "F64", "F16", "BF16", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL",
                          "F8_E4M3", "F8_E5M2", "C64", "f32", "", "F32 ", "float32", "F", "null"]
            let noise = Array("{}[],:\" 0123456789-+.eE\\ntruefalsenull_".utf8)
            for _ in 0..<4000 {
                let base = bases[g.below(bases.count)]
                var (header, data) = stParts(base)
                var file = base
                for _ in 0...g.below(3) {
                    let headerEnd = file.count - data.count
                    let at = file.isEmpty ? 0 : (g.below(4) == 0 ? g.below(file.count) : g.below(max(1, min(headerEnd, file.count))))
                    switch g.below(9) {
                    case 0: if !file.isEmpty { for _ in 0...g.below(8) { file[g.below(file.count)] ^= UInt8(1 << g.below(8)) } }
                    case 1: if !file.isEmpty { file[at] = UInt8(g.below(256)) }
                    case 2: file.insert(contentsOf: (0...g.below(16)).map { _ in UInt8(g.below(256)) }, at: min(at, file.count))
                    case 3: if !file.isEmpty { file.removeSubrange(at..<min(file.count, at + 1 + g.below(8))) }
                    case 4:  // a number of the header (a size or an offset) replaced, with a consistent length field
                        let numbers = header.ranges(of: #/-?[0-9]+/#)
                        if let r = numbers.randomElement(using: &rng) {
                            header.replaceSubrange(r, with: huge[g.below(huge.count)])
                            file = stFile(header, data)
                        }
                    case 5:  // a dtype replaced
                        let names = header.ranges(of: #/"dtype":"[^"]*"/#)
                        if let r = names.randomElement(using: &rng) {
                            header.replaceSubrange(r, with: "\"dtype\":\"\(dtypes[g.below(dtypes.count)])\"")
                            file = stFile(header, data)
                        }
                    case 6:  // offsets copied from another tensor: overlaps and gaps
                        let offsets = header.ranges(of: #/\[[0-9]+,[0-9]+\]/#)
                        if offsets.count >= 2 {
                            let from = offsets[g.below(offsets.count)], to = offsets[g.below(offsets.count)]
                            let text = String(header[from])
                            header.replaceSubrange(to, with: text)
                            file = stFile(header, data)
                        }
                    case 7:  // a random length field: small changes or any 64-bit value
                        var n: UInt64 = 0
                        for i in 0..<min(8, file.count) { n |= UInt64(file[i]) << (8 * UInt64(i)) }
                        n = g.below(2) == 0 ? n &+ UInt64(bitPattern: Int64(g.below(17) - 8)) : g.nextUInt64() >> UInt64(g.below(64))
                        for i in 0..<min(8, file.count) { file[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
                    default:  // structural characters sprinkled into the header, length field kept consistent
                        var bytes = Array(header.utf8)
                        for _ in 0...g.below(4) { bytes.insert(noise[g.below(noise.count)], at: g.below(bytes.count + 1)) }
                        header = String(decoding: bytes, as: UTF8.self)
                        file = stFile(header, data)
                    }
                    if g.below(6) == 0 { data = Array(data.prefix(g.below(data.count + 1))); file = stFile(header, data) }
                }
                try check(file)
            }
            print("safetensors fuzz: \(tried) mutated files tried, \(loaded) loaded, \(threw) threw DBMError")
            #expect(tried == loaded + threw)
            #expect(loaded > 100 && threw > 1000)
        }
    }

    /// The reader accepts exactly what the reference implementation (Python's safetensors) accepts,
    /// on structural edits of the header: sizes, offsets, dtypes, lengths.
    @Test func agreesWithTheReferenceImplementationOnHeaderEdits() throws {
        try withTempDir { dir in
            let bases = Array(try fuzzBases(dir).prefix(2))   // F32/F64 only: numpy loads every dtype we do
            let g = Generator(seed: 31)
            var rng = SeededRandom(g)
            let replacements = ["0", "1", "2", "3", "4", "8", "12", "16", "24", "32", "48", "56", "64", "88", "-1",
                                "4611686018427387904", "18446744073709551615", "1.0"]
            let dtypes = ["F32", "F64", "F16", "I32", "F33", "f32"]
            var manifest = ""
            var ours: [Bool] = []
            for i in 0..<400 {
                let base = bases[g.below(bases.count)]
                var (header, data) = stParts(base)
                for _ in 0...g.below(2) {
                    switch g.below(5) {
                    case 4:  // a shape replaced by another of the same element count: still valid
                        let shapes = header.ranges(of: #/"shape":\[[0-9,]*\]/#)
                        if let r = shapes.randomElement(using: &rng) {
                            let sizes = header[r].matches(of: #/[0-9]+/#).map { Int($0.output)! }
                            let other = [sizes.reversed(), [sizes.reduce(1, *)], sizes + [1], [1] + sizes][g.below(4)]
                            header.replaceSubrange(r, with: "\"shape\":[" + other.map(String.init).joined(separator: ",") + "]")
                        }
                    case 0, 1:
                        let numbers = header.ranges(of: #/[0-9]+/#)
                        if let r = numbers.randomElement(using: &rng) { header.replaceSubrange(r, with: replacements[g.below(replacements.count)]) }
                    case 2:
                        let names = header.ranges(of: #/"dtype":"[^"]*"/#)
                        if let r = names.randomElement(using: &rng) { header.replaceSubrange(r, with: "\"dtype\":\"\(dtypes[g.below(dtypes.count)])\"") }
                    default:
                        data = g.below(2) == 0 ? Array(data.prefix(g.below(data.count + 1))) : data + [UInt8](repeating: 7, count: 1 + g.below(8))
                    }
                }
                let path = "\(dir)/ref\(i).safetensors"
                try writeBytes(stFile(header, data), to: path)
                manifest += path + "\n"
                ours.append((try? Safetensors.read(path: path)) != nil)
            }
            try manifest.write(toFile: "\(dir)/manifest.txt", atomically: false, encoding: .utf8)
            let script = #"""
import sys
from safetensors.numpy import load_file
for path in open(sys.argv[1] + '/manifest.txt').read().split():
    try:
        load_file(path); print('LOADS')
    except Exception as e:
        print('REJECTS', type(e).__name__, str(e)[:100].replace('\n', ' '))
"""#
            let (status, output) = try runPython(script, [dir])
            try #require(status == 0, "python failed: \(output)")
            let theirs = output.split(separator: "\n").filter { $0.hasPrefix("LOADS") || $0.hasPrefix("REJECTS") }
            try #require(theirs.count == ours.count, "python answered \(theirs.count) of \(ours.count): \(output)")
            var disagreements: [String] = []
            for (i, (mine, line)) in zip(ours, theirs).enumerated() where mine != line.hasPrefix("LOADS") {
                let (header, _) = stParts(try readBytes("\(dir)/ref\(i).safetensors"))
                disagreements.append("ours \(mine ? "loads" : "rejects"), python: \(line) — \(header)")
            }
            let loads = ours.filter { $0 }.count
            print("safetensors vs the reference: \(ours.count) header edits, \(loads) load, \(ours.count - loads) rejected, "
                + "\(disagreements.count) disagreements")
            #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
            #expect(loads > 20 && loads < ours.count - 20)
        }
    }
}

/// Generator as a RandomNumberGenerator, for randomElement(using:): reproducible picks.
fileprivate struct SeededRandom: RandomNumberGenerator {
    let g: Generator
    init(_ g: Generator) { self.g = g }
    mutating func next() -> UInt64 { g.nextUInt64() }
}
