import Foundation
import Testing
import DBMCore

fileprivate func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

fileprivate func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// An npy file built by hand: header text, version, data. `bytes` fills in the length field.
fileprivate struct NpyParts {
    var header: String
    var version: (UInt8, UInt8) = (1, 0)
    var data: [UInt8] = []

    var bytes: [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version.0, version.1]
        let lengthBytes = version.0 == 1 ? 2 : 4
        for i in 0..<lengthBytes { out.append(UInt8(truncatingIfNeeded: h.count >> (8 * i))) }
        return out + h + data
    }

    /// Splits a complete file (as written by Npy.write) back into parts.
    init(file: [UInt8]) {
        let v = (file[6], file[7])
        let lengthBytes = v.0 == 1 ? 2 : 4
        var hl = 0
        for i in 0..<lengthBytes { hl |= Int(file[8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        header = String(decoding: file[start..<start + hl], as: UTF8.self)
        version = v
        data = Array(file[(start + hl)...])
    }

    init(header: String, version: (UInt8, UInt8) = (1, 0), data: [UInt8] = []) {
        self.header = header; self.version = version; self.data = data
    }
}

fileprivate func header(_ descr: String, _ shape: String, fortran: Bool = false) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }\n"
}

/// Reads and classifies: the tensor, or the DBMError's message. Any other error is a test failure.
fileprivate func tryRead(_ path: String) -> Result<Tensor, DBMError>? {
    do { return .success(try Npy.read(path: path)) }
    catch let e as DBMError { return .failure(e) }
    catch { Issue.record("unexpected error type \(type(of: error)): \(error)"); return nil }
}

@Suite("Npy") struct NpyTests {

    // ------------------------------------------------------------------ numpy writes, we read

    @Test func readsWhatNumpyWrites() throws {
        let script = #"""
import sys, numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
rng = np.random.default_rng(7)
cases = {}
cases['f4'] = rng.standard_normal((3, 4)).astype('<f4')
s = rng.standard_normal((2, 3)).astype('<f4'); s.flat[0] = np.nan; s.flat[1] = np.inf; s.flat[2] = -0.0; s.flat[3] = np.float32(1e-45)
cases['f4_special'] = s
cases['f8'] = rng.standard_normal((5, 2))
cases['f8_special'] = np.array([np.nan, -np.inf, -0.0, 5e-324, 1.7976931348623157e308])
cases['i4'] = rng.integers(-2**31, 2**31, size=(4, 3), dtype='<i4')
cases['i8'] = np.array([-2**53, 2**53, -1, 0, 123456789012345, -2**63, 2**63 - 1], dtype='<i8')
cases['f8_big'] = rng.standard_normal((2, 3)).astype('>f8')
cases['f4_big'] = rng.standard_normal((7,)).astype('>f4')
cases['i4_big'] = np.arange(-5, 5, dtype='>i4')
cases['i8_big'] = np.array([-2**40, 7, 2**62], dtype='>i8')
cases['fortran'] = np.asfortranarray(rng.standard_normal((3, 4, 5)))
cases['fortran_f4'] = np.asfortranarray(rng.standard_normal((2, 7)).astype('<f4'))
cases['fortran_i2'] = np.asfortranarray(np.arange(12, dtype='<i2').reshape(3, 4))
cases['scalar'] = np.array(3.25)
cases['scalar_f4'] = np.array(np.float32(-1.5))
cases['scalar_i8'] = np.array(-42, dtype='<i8')
cases['cube'] = rng.standard_normal((2, 3, 4)).astype('<f4')
cases['empty'] = np.zeros((0, 3), dtype='<f4')
cases['empty3'] = np.zeros((2, 0, 4))
cases['empty_i8'] = np.zeros((0,), dtype='<i8')
cases['u1'] = np.array([0, 1, 127, 128, 255], dtype='u1')
cases['i1'] = np.array([-128, -1, 0, 1, 127], dtype='i1')
cases['u2'] = np.array([0, 65535, 300], dtype='<u2')
cases['i2'] = np.array([-32768, 32767, -2], dtype='<i2')
cases['u4'] = np.array([0, 2**32 - 1], dtype='<u4')
cases['u8'] = np.array([0, 2**53, 2**64 - 1], dtype='<u8')
cases['b1'] = np.array([[True, False], [False, True]])
cases['long'] = rng.standard_normal(200000).astype('<f4')
cases['long_u2'] = rng.integers(0, 65536, size=(300, 500), dtype='<u2')
for name, a in cases.items():
    np.save(f'{d}/{name}.npy', a)
assert open(f'{d}/fortran.npy', 'rb').read().find(b"'fortran_order': True") > 0
for v in [(1, 0), (2, 0), (3, 0)]:
    a = rng.standard_normal((3, 2)).astype('<f4')
    name = f'v{v[0]}'
    with open(f'{d}/{name}.npy', 'wb') as f:
        fmt.write_array(f, a, version=v)
    cases[name] = a
for name, a in cases.items():
    is_f4 = a.dtype.kind == 'f' and a.dtype.itemsize == 4
    expect = np.ascontiguousarray(a).astype('<f4' if is_f4 else '<f8')
    expect.tofile(f'{d}/{name}.expect')
    print('CASE', name, 'float32' if is_f4 else 'float64', ','.join(map(str, a.shape)))
print('VERDICT OK')
"""#
        try withTempDir { dir in
            let (status, output) = try runPython(script, [dir])
            try #require(status == 0 && output.contains("VERDICT OK"), "python failed: \(output)")
            var checked = 0
            for line in output.split(separator: "\n") where line.hasPrefix("CASE ") {
                let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                let name = f[1], dtype = f[2]
                let shape = f.count > 3 && !f[3].isEmpty ? f[3].split(separator: ",").map { Int($0)! } : []
                let t = try Npy.read(path: "\(dir)/\(name).npy")
                #expect(t.dtype.rawValue == dtype, "\(name): dtype")
                #expect(t.shape == shape, "\(name): shape \(t.shape) vs \(shape)")
                // (Tensor.isContiguous says false for some zero-size shapes; nothing to lay out there.)
                #expect(t.isContiguous || t.count == 0, "\(name): contiguous")
                let expect = try readBytes("\(dir)/\(name).expect")
                // Compare bit patterns: exact, and NaN, -0.0 and subnormals included.
                if t.dtype == .float32 {
                    let want = expect.withUnsafeBytes { raw in
                        (0..<expect.count / 4).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
                    }
                    #expect(t.toFloats().map(\.bitPattern) == want, "\(name): values")
                } else {
                    let want = expect.withUnsafeBytes { raw in
                        (0..<expect.count / 8).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
                    }
                    #expect(t.toDoubles().map(\.bitPattern) == want, "\(name): values")
                }
                checked += 1
            }
            #expect(checked == 32)
        }
    }

    // ------------------------------------------------------------------ we write, numpy reads

    @Test func numpyReadsWhatWeWrite() throws {
        let g = Generator(seed: 11)
        var f32 = try Tensor.randn([3, 4], generator: g)
        var specials = f32.toDoubles()
        specials[0] = .infinity; specials[1] = -0.0; specials[2] = 1e-40; specials[3] = .nan
        f32 = try Tensor.from(specials, shape: [3, 4], dtype: .float32)
        let f64 = try Tensor.randn([5], dtype: .float64, generator: g)
        let roundings: [Double] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2147483647, -2147483648, 1000.4, -0.0, 7.49999]
        let int32Source = try Tensor.from(roundings, shape: [11], dtype: .float64)
        let big: [Double] = [0x1p63 - 1024, -0x1p63, 123456789012345, 0.5, -3.5, 1e15 + 0.5]
        let int64Source = try Tensor.from(big, shape: [2, 3], dtype: .float64)
        let matrix = try Tensor.randn([3, 4], dtype: .float64, generator: g)
        let transposed = try matrix.t()                        // non-contiguous (strides 1, 4)
        let window = try Tensor.randn([4, 6], generator: g).narrow(1, 2, 3)  // non-contiguous with an offset
        let scalar = try Tensor.from([7.5], shape: [], dtype: .float64)
        let empty = try Tensor(shape: [0, 3], dtype: .float32)
        let empty3 = try Tensor(shape: [2, 0, 4], dtype: .float64)
        let cube = try Tensor.randn([2, 3, 4], generator: g)
        let large = try Tensor.randn([70000], generator: g)  // more than one conversion chunk

        // (name, tensor, write type, numpy dtype string, expected values as Doubles)
        func rint(_ xs: [Double]) -> [Double] { xs.map { $0.rounded(.toNearestOrEven) } }
        func asF32(_ xs: [Double]) -> [Double] { xs.map { Double(Float($0)) } }
        let cases: [(String, Tensor, NpyWriteType, String, [Double])] = [
            ("f32_same", f32, .same, "<f4", f32.toDoubles()),
            ("f64_same", f64, .same, "<f8", f64.toDoubles()),
            ("f32_as_f64", f32, .float64, "<f8", f32.toDoubles()),
            ("f64_as_f32", f64, .float32, "<f4", asF32(f64.toDoubles())),
            ("f64_as_i32", int32Source, .int32, "<i4", rint(roundings)),
            ("f32_as_i32", cube, .int32, "<i4", rint(cube.toDoubles())),
            ("f64_as_i64", int64Source, .int64, "<i8", rint(big)),
            ("transposed", transposed, .same, "<f8", transposed.toDoubles()),
            ("window", window, .same, "<f4", window.toDoubles()),
            ("scalar", scalar, .same, "<f8", [7.5]),
            ("scalar_i64", scalar, .int64, "<i8", [8]),
            ("empty", empty, .same, "<f4", []),
            ("empty3", empty3, .int32, "<i4", []),
            ("cube", cube, .same, "<f4", cube.toDoubles()),
            ("large", large, .same, "<f4", large.toDoubles()),
        ]
        let script = #"""
import sys, numpy as np
d = sys.argv[1]
ok = True
for line in open(f'{d}/manifest.txt'):
    name, dtype, shape = line.rstrip('\n').split(' ')
    shape = tuple(int(x) for x in shape.split(',') if x)
    path = f'{d}/{name}.npy'
    raw = open(path, 'rb').read()
    problems = []
    if raw[:8] != b'\x93NUMPY\x01\x00': problems.append('not version 1.0')
    hl = int.from_bytes(raw[8:10], 'little')
    if (10 + hl) % 64 != 0: problems.append(f'data offset {10 + hl} not a multiple of 64')
    if raw[10 + hl - 1:10 + hl] != b'\n': problems.append('header does not end in newline')
    a = np.load(path)
    e = np.fromfile(f'{d}/{name}.expect', dtype='<f8').reshape(shape)
    if a.dtype.str != dtype: problems.append(f'dtype {a.dtype.str} != {dtype}')
    if a.shape != shape: problems.append(f'shape {a.shape} != {shape}')
    if not a.flags.c_contiguous: problems.append('not C order')
    if not problems:
        want = e.astype(a.dtype)
        if not np.array_equal(a, want, equal_nan=(a.dtype.kind == 'f')): problems.append('values differ')
        elif a.dtype.kind == 'f' and not np.array_equal(np.signbit(a), np.signbit(want)): problems.append('signs differ')
    if problems:
        ok = False
        print('FAIL', name, '; '.join(problems))
    else:
        print('OK', name)
print('VERDICT', 'OK' if ok else 'FAIL')
"""#
        try withTempDir { dir in
            var manifest = ""
            for (name, t, type, descr, expected) in cases {
                let path = "\(dir)/\(name).npy"
                try Npy.write(t, path: path, as: type)
                let expectBytes = expected.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
                try writeBytes(expectBytes, to: "\(dir)/\(name).expect")
                manifest += "\(name) \(descr) \(t.shape.map(String.init).joined(separator: ","))\n"

                // Our own reader gives back the same values (integers come back as Float64).
                let back = try Npy.read(path: path)
                #expect(back.shape == t.shape, "\(name)")
                if descr.contains("i") {
                    #expect(back.toDoubles() == expected, "\(name)")  // integers: -0.0 becomes 0, so compare values
                } else {
                    #expect(back.toDoubles().map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
                }
            }
            try manifest.write(toFile: "\(dir)/manifest.txt", atomically: false, encoding: .utf8)
            let (status, output) = try runPython(script, [dir])
            #expect(status == 0)
            #expect(output.contains("VERDICT OK"), "numpy verdict:\n\(output)")
            #expect(output.split(separator: "\n").filter { $0.hasPrefix("OK ") }.count == cases.count)
        }
    }

    @Test func headerLayout() {
        for shape in [[], [1], [3, 4], [2, 3, 4, 5, 6, 7], [Int.max]] {
            let bytes = Npy.headerBytes(descr: "<f8", shape: shape)
            #expect(bytes.count % 64 == 0)
            #expect(bytes.last == 0x0A)
            let headerLength = Int(bytes[8]) | (Int(bytes[9]) << 8)
            #expect(headerLength == bytes.count - 10)
        }
        let text = String(decoding: Npy.headerBytes(descr: "<f4", shape: [3]), as: UTF8.self)
        #expect(text.contains("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"))
        #expect(String(decoding: Npy.headerBytes(descr: "<i4", shape: []), as: UTF8.self).contains("'shape': ()"))
    }

    // ------------------------------------------------------------------ integer conversion and atomic writes

    @Test func integerWritesRefuseWhatDoesNotFit() throws {
        try withTempDir { dir in
            let path = "\(dir)/x.npy"
            let cases: [([Double], NpyWriteType, String)] = [
                ([1, .nan], .int32, "not a finite number"),
                ([.infinity], .int64, "not a finite number"),
                ([-.infinity], .int32, "not a finite number"),
                ([3e9], .int32, "outside the int32 range"),
                ([-2147483648.6], .int32, "outside the int32 range"),
                ([2147483647.5], .int32, "outside the int32 range"),  // rounds (to even) to 2^31
                ([0x1p63], .int64, "outside the int64 range"),
                ([-1e19], .int64, "outside the int64 range"),
            ]
            try Npy.write(try Tensor.from([1, 2], shape: [2], dtype: .float64), path: path)
            let before = try readBytes(path)
            for (values, type, message) in cases {
                let t = try Tensor.from(values, shape: [values.count], dtype: .float64)
                do {
                    try Npy.write(t, path: path, as: type)
                    Issue.record("writing \(values) as \(type) should fail")
                } catch let e as DBMError {
                    #expect(e.message.contains(message), "\(e.message)")
                    #expect(e.message.contains(path))
                }
            }
            // A failed write leaves the old file as it was and no temporary files behind.
            #expect(try readBytes(path) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["x.npy"])
            // Edges that do fit.
            try Npy.write(try Tensor.from([2147483647.4, -2147483648.4], shape: [2], dtype: .float64), path: path, as: .int32)
            #expect(try Npy.read(path: path).toDoubles() == [2147483647, -2147483648])
        }
    }

    @Test func writesAtomicallyAndReportsBadPaths() throws {
        try withTempDir { dir in
            let path = "\(dir)/a.npy"
            try Npy.write(try Tensor.from([1, 2, 3], shape: [3]), path: path)
            try Npy.write(try Tensor.from([4, 5], shape: [2]), path: path)  // replaces
            #expect(try Npy.read(path: path).toDoubles() == [4, 5])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.npy"])

            let t = try Tensor.from([1], shape: [1])
            for bad in ["\(dir)/missing/dir/x.npy", dir, "\(dir)/"] {
                do { try Npy.write(t, path: bad); Issue.record("writing to \(bad) should fail") }
                catch let e as DBMError { #expect(e.message.contains("cannot write"), "\(e.message)") }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.npy"])
        }
    }

    // ------------------------------------------------------------------ malformed files

    @Test func malformedFilesThrowClearErrors() throws {
        let f4x12 = [UInt8](repeating: 0, count: 48)
        let ok = header("<f4", "(3, 4)")
        // (case, file bytes (nil: no file is written), expected part of the message)
        let cases: [(String, [UInt8]?, String)] = [
            ("missing file", nil, "does not exist"),
            ("empty file", [], "not an npy file"),
            ("bad magic", Array("\u{93}NUMPZ".utf8) + [1, 0, 0, 0], "not an npy file"),
            ("zip file (npz)", [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60), "not an npy file"),
            ("magic only", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59], "truncated"),
            ("no header length", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 5], "truncated"),
            ("version 4.0", NpyParts(header: ok, version: (4, 0), data: f4x12).bytes, "version 4.0"),
            ("version 1.1", NpyParts(header: ok, version: (1, 1), data: f4x12).bytes, "version 1.1"),
            ("version 0.0", NpyParts(header: ok, version: (0, 0), data: f4x12).bytes, "version 0.0"),
            ("header longer than file", Array(NpyParts(header: ok).bytes.prefix(40)), "truncated header"),
            ("header length field too large", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF] + Array(ok.utf8),
             "truncated header"),
            ("header cut inside the dict", NpyParts(header: "{'descr': '<f4', 'fortran").bytes, "not a valid Python dict literal"),
            ("header is a list", NpyParts(header: "[1, 2]\n").bytes, "not a dict (it is a list)"),
            ("header is a string", NpyParts(header: "'hello'\n").bytes, "not a dict"),
            ("header is a tuple", NpyParts(header: "('<f4', False, (3,))\n").bytes, "not a dict"),
            ("empty header", NpyParts(header: "      \n").bytes, "header is empty"),
            ("zero-length header", NpyParts(header: "").bytes, "header is empty"),
            ("missing shape", NpyParts(header: "{'descr': '<f4', 'fortran_order': False}\n").bytes, "no 'shape' key"),
            ("missing descr", NpyParts(header: "{'shape': (1,), 'fortran_order': False}\n").bytes, "no 'descr' key"),
            ("extra key", NpyParts(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}\n").bytes,
             "unexpected key 'x'"),
            ("duplicate key", NpyParts(header: "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': ()}\n").bytes,
             "duplicate key 'descr'"),
            ("non-string key", NpyParts(header: "{1: '<f4'}\n").bytes, "dict keys must be strings"),
            ("complex descr", NpyParts(header: header("<c8", "(3,)")).bytes, "unknown descr '<c8'"),
            ("float16 descr", NpyParts(header: header("<f2", "(3,)")).bytes, "unknown descr '<f2'"),
            ("unicode descr", NpyParts(header: header("<U5", "(3,)")).bytes, "unknown descr '<U5'"),
            ("empty descr", NpyParts(header: header("", "(3,)")).bytes, "unknown descr ''"),
            ("descr with odd byte order", NpyParts(header: header("!f4", "(3,)")).bytes, "unknown descr '!f4'"),
            ("object array", NpyParts(header: header("|O", "(3,)")).bytes, "object arrays ('|O')"),
            ("structured array", NpyParts(header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }\n").bytes,
             "structured arrays"),
            ("descr not a string", NpyParts(header: "{'descr': 4, 'fortran_order': False, 'shape': (3,), }\n").bytes,
             "'descr' is the integer 4"),
            ("fortran_order not a bool", NpyParts(header: "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }\n").bytes,
             "'fortran_order' is the integer 0"),
            ("shape an integer", NpyParts(header: header("<f4", "3")).bytes, "'shape' is the integer 3"),
            ("shape parenthesised integer", NpyParts(header: header("<f4", "(3)")).bytes, "'shape' is the integer 3"),
            ("shape a list", NpyParts(header: header("<f4", "[3]")).bytes, "'shape' is a list"),
            ("negative size", NpyParts(header: header("<f4", "(-1, 3)"), data: f4x12).bytes, "non-negative"),
            ("float size", NpyParts(header: header("<f4", "(3.0,)")).bytes, "expected integer sizes"),
            ("None size", NpyParts(header: header("<f4", "(None,)")).bytes, "expected integer sizes"),
            ("size beyond Int", NpyParts(header: header("<f4", "(99999999999999999999,)")).bytes,
             "shape size 99999999999999999999 is too large"),
            ("element count overflows", NpyParts(header: header("<f4", "(4611686018427387904, 4611686018427387904)")).bytes,
             "too many elements"),
            ("byte count overflows", NpyParts(header: header("<f8", "(2305843009213693952,)")).bytes, "too many bytes"),
            ("huge shape, no data", NpyParts(header: header("<f4", "(1000000000000,)")).bytes,
             "holds 0 bytes of data, shape (1000000000000) of <f4 needs 4000000000000"),
            ("data too short", NpyParts(header: ok, data: [UInt8](repeating: 0, count: 40)).bytes,
             "holds 40 bytes of data, shape (3, 4) of <f4 needs 48"),
            ("integer data too short", NpyParts(header: header("<i8", "(2, 2)"), data: [UInt8](repeating: 0, count: 31)).bytes,
             "holds 31 bytes of data, shape (2, 2) of <i8 needs 32"),
            ("too many dimensions", NpyParts(header: header("<f4", "(" + String(repeating: "1, ", count: 65) + ")")).bytes,
             "65 dimensions"),
            ("nested too deeply", NpyParts(header: "{'descr': " + String(repeating: "(", count: 10000) + "\n").bytes,
             "nested too deeply"),
            ("unterminated string", NpyParts(header: "{'descr': '<f4\n").bytes, "string runs past the end of the line"),
            ("text after the dict", NpyParts(header: String(ok.dropLast()) + " x\n").bytes, "unexpected text after the value"),
            ("unknown name", NpyParts(header: "{'descr': '<f4', 'fortran_order': false, 'shape': (), }\n").bytes,
             "unexpected name 'false'"),
            ("binary garbage header", NpyParts(header: "{\u{0}\u{1}\u{FF}}").bytes, "not a valid Python dict literal"),
            ("missing colon", NpyParts(header: "{'descr' '<f4'}\n").bytes, "expected ':'"),
            ("missing comma", NpyParts(header: "{'descr': '<f4' 'shape': ()}\n").bytes, "expected ',' or '}'"),
        ]
        try withTempDir { dir in
            for (i, (name, bytes, message)) in cases.enumerated() {
                let path = "\(dir)/case\(i).npy"
                if let bytes { try writeBytes(bytes, to: path) }
                switch tryRead(path) {
                case .success(let t): Issue.record("\(name): loaded a tensor of shape \(t.shape), expected an error")
                case .failure(let e):
                    #expect(e.message.contains(message), "\(name): \(e.message)")
                    #expect(e.message.contains(path), "\(name): the message should name the file: \(e.message)")
                case nil: break
                }
            }
            // A directory is not a file.
            if case .failure(let e) = tryRead(dir) { #expect(e.message.contains("not a regular file"), "\(e.message)") }
            else { Issue.record("reading a directory should fail") }
        }
    }

    @Test func headerVariantsThatNumpyAlsoAccepts() throws {
        let data = (0..<6).flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }
        let variants = [
            "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}",          // any key order, no trailing comma
            "{ \"descr\" :\"<f8\",\t'fortran_order':False ,'shape':( 2 ,3 , ) }\n",  // quotes, spacing, tabs
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }    \n", // Python 2 long suffix
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",        // no final newline
        ]
        try withTempDir { dir in
            for (i, h) in variants.enumerated() {
                let path = "\(dir)/v\(i).npy"
                try writeBytes(NpyParts(header: h, data: data).bytes, to: path)
                let t = try Npy.read(path: path)
                #expect(t.shape == [2, 3] && t.toDoubles() == [0, 1, 2, 3, 4, 5], "variant \(i)")
            }
            // Trailing bytes after the data are ignored, as numpy does.
            try writeBytes(NpyParts(header: header("<f8", "(2, 3)"), data: data + [1, 2, 3]).bytes, to: "\(dir)/t.npy")
            #expect(try Npy.read(path: "\(dir)/t.npy").shape == [2, 3])
            // Big-endian Fortran order by hand: column-major [[0, 2, 4], [1, 3, 5]] in memory order 0..5.
            let bigData = (0..<6).flatMap { withUnsafeBytes(of: Double($0).bitPattern.bigEndian, Array.init) }
            try writeBytes(NpyParts(header: header(">f8", "(2, 3)", fortran: true), data: bigData).bytes, to: "\(dir)/f.npy")
            #expect(try Npy.read(path: "\(dir)/f.npy").toDoubles() == [0, 2, 4, 1, 3, 5])
        }
    }

    // ------------------------------------------------------------------ mutation fuzzing

    @Test func mutatedFilesLoadOrThrowButNeverCrash() throws {
        try withTempDir { dir in
            // Valid starting points: written by us, and by hand for the other versions, orders and types.
            let g = Generator(seed: 2024)
            var bases: [NpyParts] = []
            for (i, t) in [try Tensor.randn([3, 4], generator: g), try Tensor.randn([2, 3, 2], dtype: .float64, generator: g),
                           try Tensor(shape: [0, 4])].enumerated() {
                try Npy.write(t, path: "\(dir)/base\(i).npy")
                bases.append(NpyParts(file: try readBytes("\(dir)/base\(i).npy")))
            }
            let bytes = (0..<48).map { UInt8($0 * 5 & 0xFF) }
            bases.append(NpyParts(header: header(">f8", "(2, 3)", fortran: true), data: bytes))
            bases.append(NpyParts(header: header("<i8", "(5,)"), version: (2, 0), data: Array(bytes.prefix(40))))
            bases.append(NpyParts(header: header("|b1", "(2, 2)"), version: (3, 0), data: [0, 1, 1, 0]))
            bases.append(NpyParts(header: header("|u1", "()"), data: [200]))
            bases.append(NpyParts(header: header("<u2", "(3, 2)", fortran: true), data: Array(bytes.prefix(12))))

            let path = "\(dir)/fuzz.npy"
            var tried = 0, loaded = 0, threw = 0
            func check(_ file: [UInt8]) throws {
                try writeBytes(file, to: path)
                tried += 1
                switch tryRead(path) {
                case .success(let t):
                    loaded += 1
                    // Whatever loaded came from the file: at most 8 bytes of tensor per byte of file.
                    #expect(t.count <= file.count && t.byteCount <= 8 * file.count)
                case .failure: threw += 1
                case nil: break
                }
            }

            // 1. Truncation at every length through the header and a little beyond.
            for base in bases {
                let file = base.bytes
                for n in 0..<min(file.count, file.count - base.data.count + 16) { try check(Array(file.prefix(n))) }
            }

            // 2. Seeded random mutations.
            let shapes = ["(9223372036854775807,)", "(4611686018427387904, 4)", "(-5,)", "(99999999999999999999,)",
                          "(1000000000000, 1000000000000)", "(0, 9223372036854775807)", "(3, -1)", "()", "(1,)",
                          "(" + String(repeating: "2, ", count: 70) + ")", "(2, 3)", "(6,)", "(3, 2)", "((2,),)", "(1e3,)"]
            let descrs = ["<f4", ">f4", "<f8", ">f8", "|b1", "|i1", "|u1", "<i2", ">u2", "<i4", ">i8", "<u8",
                          "|O", "<c16", "<f2", "", "<", "f8", "<f4 ", "<i3", "|V8", "<M8[s]"]
            let noise = Array("{}()[],:'\" 0123456789-+.LTrueFalseNone\n\\".utf8)
            for _ in 0..<4000 {
                var parts = bases[g.below(bases.count)]
                var file = parts.bytes
                let headerEnd = file.count - parts.data.count
                for _ in 0...g.below(3) {
                    if file.isEmpty { break }
                    // Most edits land in the prefix and header, where the parsing is.
                    let at = g.below(4) == 0 ? g.below(file.count) : g.below(min(headerEnd, file.count))
                    switch g.below(8) {
                    case 0: for _ in 0...g.below(8) { file[g.below(file.count)] ^= UInt8(1 << g.below(8)) }
                    case 1: file[at] = UInt8(g.below(256))
                    case 2: file.insert(contentsOf: (0...g.below(16)).map { _ in UInt8(g.below(256)) }, at: at)
                    case 3: file.removeSubrange(at..<min(file.count, at + 1 + g.below(8)))
                    case 4:  // a different shape, with a consistent length field
                        if let r = parts.header.range(of: #"\([^)]*\)"#, options: .regularExpression) {
                            parts.header.replaceSubrange(r, with: shapes[g.below(shapes.count)])
                            file = parts.bytes
                        }
                    case 5:  // a different descr, with a consistent length field
                        if let r = parts.header.range(of: #"'[<>|=]?[a-zA-Z][0-9]*'"#, options: .regularExpression) {
                            parts.header.replaceSubrange(r, with: "'\(descrs[g.below(descrs.count)])'")
                            file = parts.bytes
                        }
                    case 6:  // a random header length field
                        let lengthBytes = file.count > 6 && file[6] == 1 ? 2 : 4
                        for i in 8..<min(file.count, 8 + lengthBytes) { file[i] = UInt8(g.below(256)) }
                    default:  // structural characters sprinkled into the header
                        for _ in 0...g.below(4) { file.insert(noise[g.below(noise.count)], at: min(at, file.count)) }
                    }
                }
                try check(file)
            }
            print("npy fuzz: \(tried) mutated files tried, \(loaded) loaded a tensor, \(threw) threw DBMError")
            #expect(tried == loaded + threw)
            #expect(loaded > 0 && threw > 0)
        }
    }
}
