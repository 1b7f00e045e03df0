import Foundation
import Testing
import DBMCore

/// The bytes of a file, and its size.
fileprivate func fileBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

/// Appends raw bytes at the end of a file, as a kill between an append's row write and its header
/// update leaves them.
fileprivate func appendRaw(_ bytes: [UInt8], to path: String) throws {
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? h.close() }
    try h.seekToEnd()
    try h.write(contentsOf: Data(bytes))
}

fileprivate func f64(_ values: [Double], _ shape: [Int]) throws -> Tensor { try Tensor.from(values, shape: shape, dtype: .float64) }

@Suite("NpyAppender") struct NpyAppenderTests {

    @Test("the growable header is numpy's, byte for byte, and its length does not depend on the row count")
    func growableHeaderLength() throws {
        for rowShape in [[], [1], [64], [3, 4]] {
            let lengths = Set([0, 1, 9, 10, 99, 100, 123_456_789, Int.max].map {
                Npy.growableHeaderBytes(descr: "<f8", shape: [$0] + rowShape).count
            })
            #expect(lengths.count == 1, "row shape \(rowShape): header lengths \(lengths)")
            #expect(lengths.first! % 64 == 0)
        }
        // numpy ≥ 1.23 writes this header for np.zeros((3, 4)); a full 64 bytes of padding when none is needed.
        let h = Npy.growableHeaderBytes(descr: "<f8", shape: [3, 4])
        #expect(h.count == 128 && h[8] == 118 && h[9] == 0 && h.last == 0x0A)
        #expect(String(decoding: h[10...], as: UTF8.self).hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   "))
    }

    @Test("appends: numpy loads the file after each one and it equals numpy.save's file; rows past the header's count are ignored; truncate cuts")
    func appendsMatchNumpy() throws {
        try withTempDir { dir in
            var manifest = ""   // name, then the expected values as a flat list with the shape
            func expect(_ name: String, _ values: [Double], _ shape: [Int], trailing: Bool = false) {
                manifest += "\(name) \(trailing ? 1 : 0) \(shape.map(String.init).joined(separator: ",")) "
                    + values.map { String($0) }.joined(separator: ",") + "\n"
            }
            // Rows × 3, Float64, created with two rows.
            let m = "\(dir)/m.npy"
            let a = try NpyAppender(path: m, rowShape: [3], type: .float64, initial: try f64([1, 2, 3, 4, 5, 6], [2, 3]))
            #expect(a.rows == 2 && a.descr == "<f8")
            #expect(try fileBytes(m).count == 128 + 2 * 24, "header and two rows")
            #expect(try a.append(try f64([7, 8, 9], [3])) == 3)                                // one row
            #expect(try a.append(try Tensor.from([10, 11, 12, 13, 14, 15], shape: [2, 3])) == 5)  // Float32 rows, converted
            #expect(try a.append(try Tensor(shape: [0, 3], dtype: .float64)) == 5)              // no rows
            let five = (1...15).map(Double.init)
            #expect(try Npy.read(path: m).toDoubles() == five)
            try FileManager.default.copyItem(atPath: m, toPath: "\(dir)/m5.npy")
            expect("m5", five, [5, 3])
            // A row written past the header's count (a kill before the header update): ignored.
            try appendRaw((0..<24).map { UInt8($0) }, to: m)
            #expect(try Npy.read(path: m).shape == [5, 3])
            try FileManager.default.copyItem(atPath: m, toPath: "\(dir)/m5_trailing.npy")
            expect("m5_trailing", five, [5, 3], trailing: true)
            // The next append writes over those bytes.
            #expect(try a.append(try f64([16, 17, 18], [3])) == 6)
            #expect(try fileBytes(m).count == 128 + 6 * 24)
            try a.truncate(rows: 1)
            #expect(try fileBytes(m).count == 128 + 24 && (try Npy.read(path: m).toDoubles()) == [1, 2, 3])
            try a.truncate(rows: 0)
            #expect(try Npy.read(path: m).shape == [0, 3])
            #expect(try a.append(try f64([5, 5, 5], [3])) == 1)
            try a.close()
            try a.close()   // idempotent
            expect("m", [5, 5, 5], [1, 3])

            // A 1-D int64 steps file, grown one step at a time across the digit boundaries of its count.
            let s = "\(dir)/steps.npy"
            let steps = try NpyAppender(path: s, rowShape: [], type: .int64)
            var want: [Double] = []
            for i in 0..<120 {
                let v = Double(i * 7)
                try steps.append(i % 2 == 0 ? try f64([v], []) : try f64([v], [1]))   // a 0-d tensor or one element
                want.append(v)
                let bytes = try fileBytes(s)
                #expect(bytes.count == 128 + 8 * want.count, "size after \(want.count) steps")
            }
            #expect(try Npy.read(path: s).toDoubles() == want)
            try steps.close()
            expect("steps", want, [120])

            // Float32 and int32 files; an empty file.
            let f = try NpyAppender(path: "\(dir)/f4.npy", rowShape: [2], type: .float32, initial: try f64([0.5, 1.5], [2]))
            try f.append(try f64([2.5, 3.5, 4.5, 5.5], [2, 2]))
            try f.close()
            expect("f4", [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], [3, 2])
            let i4 = try NpyAppender(path: "\(dir)/i4.npy", rowShape: [2, 2], type: .int32, initial: try f64([1, 2, 3, 4], [1, 2, 2]))
            try i4.append(try f64([-1, -2, -3, -4], [2, 2]))
            try i4.close()
            expect("i4", [1, 2, 3, 4, -1, -2, -3, -4], [2, 2, 2])
            try NpyAppender(path: "\(dir)/empty.npy", rowShape: [64]).close()
            expect("empty", [], [0, 64])

            try manifest.write(toFile: "\(dir)/manifest.txt", atomically: false, encoding: .utf8)
            let script = #"""
import io, sys, numpy as np
d = sys.argv[1]
ok = True
for line in open(d + '/manifest.txt'):
    name, trailing, shape, values = (line.rstrip('\n').split(' ') + [''])[:4]
    shape = tuple(int(x) for x in shape.split(',') if x)
    raw = open(f'{d}/{name}.npy', 'rb').read()
    a = np.load(f'{d}/{name}.npy')
    want = np.array([float(x) for x in values.split(',') if x]).reshape(shape)
    problems = []
    if a.shape != shape or not np.array_equal(a, want): problems.append(f'values {a.tolist()} != {want.tolist()}')
    buf = io.BytesIO(); np.save(buf, a)
    same = raw == buf.getvalue()
    if trailing == '1':
        if same or not raw.startswith(buf.getvalue()): problems.append('expected numpy.save bytes followed by more')
    elif not same: problems.append('bytes differ from numpy.save')
    print(('FAIL ' + name + ' ' + '; '.join(problems)) if problems else 'OK ' + name)
    ok = ok and not problems
print('VERDICT', 'OK' if ok else 'FAIL')
"""#
            let (status, output) = try runPython(script, [dir])
            #expect(status == 0 && output.contains("VERDICT OK"), "numpy:\n\(output)")
            #expect(output.split(separator: "\n").filter { $0.hasPrefix("OK ") }.count == 7, "\(output)")
        }
    }

    @Test("bad rows, bad sizes and a closed appender throw clear errors and leave the file as it was")
    func errors() throws {
        try withTempDir { dir in
            let path = "\(dir)/a.npy"
            let a = try NpyAppender(path: path, rowShape: [3], type: .int64, initial: try f64([1, 2, 3], [3]))
            let before = try fileBytes(path)
            func fails(_ what: String, _ message: String, _ body: () throws -> Void) {
                do { try body(); Issue.record("\(what) should fail") }
                catch let e as DBMError { #expect(e.message.contains(message), "\(what): \(e.message)") }
                catch { Issue.record("\(what): unexpected \(error)") }
            }
            fails("a row of 2", "expected one row of shape (3) or k rows of shape (k, 3), got shape (2)") { try a.append(try f64([1, 2], [2])) }
            fails("a 3-d block", "got shape (1, 1, 3)") { try a.append(try f64([1, 2, 3], [1, 1, 3])) }
            fails("NaN as int64", "not a finite number") { try a.append(try f64([1, .nan, 3], [3])) }
            fails("truncate beyond", "expected 0...1") { try a.truncate(rows: 2) }
            fails("truncate negative", "expected 0...1") { try a.truncate(rows: -1) }
            #expect(try fileBytes(path) == before, "failed appends change nothing")
            try a.close()
            fails("append after close", "closed") { try a.append(try f64([1, 2, 3], [3])) }
            fails("truncate after close", "closed") { try a.truncate(rows: 0) }
            fails("negative row size", "negative size -1") { _ = try NpyAppender(path: "\(dir)/b.npy", rowShape: [-1]) }
            fails("huge rows", "too large") { _ = try NpyAppender(path: "\(dir)/b.npy", rowShape: [Int.max, 2]) }
            fails("no such folder", "cannot write") { _ = try NpyAppender(path: "\(dir)/missing/b.npy", rowShape: [3]) }
            fails("initial rows of the wrong shape", "cannot create") {
                _ = try NpyAppender(path: "\(dir)/b.npy", rowShape: [3], initial: try f64([1, 2], [2]))
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.npy"], "no temporary files left")
        }
    }
}
