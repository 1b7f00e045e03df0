import CZlib
import Foundation
import Testing
import DBMCore

/// An IDX file's bytes: 00 00, the type, the rank, big-endian UInt32 dims, then the body.
fileprivate func idxBytes(_ dims: [UInt32], type: UInt8 = 0x08, body: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
    return out + body
}

fileprivate func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Writes bytes gzip-compressed with zlib's gzopen(…, "wb").
fileprivate func writeGzip(_ bytes: [UInt8], to path: String) throws {
    guard let gz = gzopen(path, "wb") else { throw DBMError("gzopen failed for \(path)") }
    let n = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
    guard gzclose(gz) == Z_OK, n == Int32(bytes.count) else { throw DBMError("gzwrite failed for \(path)") }
}

/// The DBMError message of body, or nil when it succeeds.
fileprivate func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

@Suite("IDX: the (Fashion-)MNIST file format, plain and gzipped")
struct IDXTests {
    @Test("a small image file and a label file read back the same, plain and gzipped")
    func roundTrip() throws {
        try withTempDir { dir in
            let pixels: [UInt8] = (0..<(3 * 2 * 4)).map { UInt8($0 * 11) }
            let images = idxBytes([3, 2, 4], body: pixels)
            let labels = idxBytes([5], body: [9, 0, 3, 3, 7])
            for gz in [false, true] {
                let (ip, lp) = ("\(dir)/images\(gz ? ".gz" : "")", "\(dir)/labels\(gz ? ".gz" : "")")
                if gz { try writeGzip(images, to: ip); try writeGzip(labels, to: lp) }
                else { try write(images, to: ip); try write(labels, to: lp) }
                let raw = try IDX.read(path: ip)
                #expect(raw.shape == [3, 2, 4] && raw.bytes == pixels)
                let t = try IDX.images(path: ip)
                #expect(t.shape == [3, 8] && t.dtype == .float32)
                #expect(t.toFloats() == pixels.map { Float($0) / 255 })
                #expect(try IDX.images(path: ip, limit: 2).shape == [2, 8])
                #expect(try IDX.images(path: ip, limit: 10).shape == [3, 8])   // a limit past the end: all of them
                #expect(try IDX.labels(path: lp) == [9, 0, 3, 3, 7])
                #expect(try IDX.labels(path: lp, limit: 2) == [9, 0])
            }
            // The gzipped file really is compressed (starts 1f 8b), so both paths of the reader ran.
            let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/images.gz")).prefix(2))
            #expect(head == [0x1F, 0x8B])
        }
    }

    @Test("bad files give an error naming the file and the fault, never a crash")
    func badFiles() throws {
        try withTempDir { dir in
            let good = idxBytes([2, 3], body: [1, 2, 3, 4, 5, 6])
            func check(_ name: String, _ bytes: [UInt8], gzip: Bool = false, _ expected: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
                let path = "\(dir)/\(name)"
                if gzip { try writeGzip(bytes, to: path) } else { try write(bytes, to: path) }
                let message = failure { try IDX.read(path: path) }
                #expect(message?.contains(expected) == true && message?.contains(path) == true,
                        "\(name): \(message ?? "no error")", sourceLocation: sourceLocation)
            }
            #expect(failure { try IDX.read(path: "\(dir)/missing.gz") }?.contains("'\(dir)/missing.gz' does not exist") == true)
            try check("empty", [], "truncated header: expected at least 4 bytes, got 0")
            try check("magic", [0x50, 0x4B, 3, 4, 0, 0, 0, 0], "wrong magic number: the file starts with 50 4b")
            try check("float", idxBytes([2], type: 0x0D, body: [0, 0, 0, 0, 0, 0, 0, 0]),
                      "unsupported element type 0x0d (float); only 0x08 (unsigned byte) is supported")
            try check("type", idxBytes([2], type: 0x42, body: [1, 2]), "unsupported element type 0x42 (not an IDX type)")
            try check("rank0", [0, 0, 8, 0], "the header declares 0 dimensions")
            try check("dims", Array(good[0..<9]), "truncated header: 2 dimensions need 8 bytes after the first 4, got 5")
            try check("body", Array(good.dropLast(2)), "truncated body: dimensions [2, 3] need 6 bytes, the file has 4")
            try check("body.gz", Array(good.dropLast(2)), gzip: true, "truncated body")
            try check("extra", good + [7], "1 bytes after the body of dimensions [2, 3]")
            try check("huge", idxBytes([65536, 65536], body: []), "absurd dimensions [65536, 65536]")
            try check("overflow", idxBytes([UInt32.max, UInt32.max, UInt32.max], body: []), "absurd dimensions")

            // A gzip stream cut short, and one with damaged compressed bytes.
            let big = idxBytes([100, 100], body: (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7919 >> 3) })
            try writeGzip(big, to: "\(dir)/whole.gz")
            let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/whole.gz")))
            try check("cut.gz", Array(gz[0..<(gz.count / 2)]), "gzip stream ends early")
            try check("nocrc.gz", Array(gz.dropLast(4)), "gzip stream ends early")
            var damaged = gz
            for i in 20..<40 { damaged[i] ^= 0xA5 }
            try check("damaged.gz", damaged, "corrupt gzip stream (zlib: ")
            var badCRC = gz
            badCRC[gz.count - 6] ^= 0xFF
            try check("crc.gz", badCRC, "corrupt gzip stream (zlib: incorrect data check)")

            // Wrong kind of file for images / labels, and a bad limit.
            try write(good, to: "\(dir)/two")
            #expect(failure { try IDX.images(path: "\(dir)/two") }?.contains("expected images of 3 dimensions") == true)
            #expect(failure { try IDX.labels(path: "\(dir)/two") }?.contains("expected labels of 1 dimension") == true)
            try write(idxBytes([2], body: [1, 2]), to: "\(dir)/labels")
            #expect(failure { try IDX.labels(path: "\(dir)/labels", limit: -1) }?.contains("limit must be >= 0, got -1") == true)
            #expect(failure { try IDX.read(path: dir) }?.contains("is not a regular file") == true)
        }
    }

    @Test("Fashion-MNIST: 60000 training and 10000 test images of 28×28, labels 0–9, 6000 per class in train")
    func fashionMNIST() throws {
        let dir = IDX.fashionMNISTDirectory
        let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        let missing = names.filter { !FileManager.default.fileExists(atPath: "\(dir)/\($0)") }
        try #require(missing.isEmpty, Comment(rawValue: "Fashion-MNIST files missing under \(dir): \(missing); "
                     + "run scripts/setup (it installs the Debian package dataset-fashion-mnist)"))
        let start = Date()
        let train = try IDX.read(path: "\(dir)/\(names[0])")
        #expect(train.shape == [60000, 28, 28])
        let trainLabels = try IDX.labels(path: "\(dir)/\(names[1])")
        var perClass = [Int](repeating: 0, count: 10)
        for l in trainLabels where (0..<10).contains(l) { perClass[l] += 1 }
        #expect(perClass == [Int](repeating: 6000, count: 10))
        let test = try IDX.images(path: "\(dir)/\(names[2])")
        #expect(test.shape == [10000, 784])
        let testLabels = try IDX.labels(path: "\(dir)/\(names[3])")
        #expect(testLabels.count == 10000 && testLabels.allSatisfy { (0..<10).contains($0) })
        let pixels = test.toFloats()
        let mean = pixels.reduce(0, +) / Float(pixels.count)
        print("Fashion-MNIST: read in \(String(format: "%.2f", Date().timeIntervalSince(start))) s; "
              + "t10k mean pixel \(mean), min \(pixels.min()!), max \(pixels.max()!)")
        #expect(pixels.min()! == 0 && pixels.max()! == 1 && mean > 0.2 && mean < 0.4)
    }
}
