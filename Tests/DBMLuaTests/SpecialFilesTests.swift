import Foundation
import Testing

// Files that are not regular files (issue 13): a FIFO, a directory or a device is refused at once by
// every loader and every writer, never waited on and never replaced; a symbolic link is written through.
@Suite("FIFOs, directories and symbolic links: refused or written through, never waited on or replaced")
struct SpecialFilesTests {
    /// dbm-lua -e code in dir, under `timeout` (status 124 would be a hang).
    func run(_ dir: String, _ code: String, args: [String] = []) throws -> ProcessResult {
        try runProcess("/usr/bin/timeout", ["20", try dbmLuaBinary()] + (args.isEmpty ? ["-e", "package.path = '\(dir)/?.lua;' .. package.path; " + code] : args),
                       environment: ProcessInfo.processInfo.environment.merging(["PWD": dir]) { $1 })
    }

    func fileType(_ path: String) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
    }

    @Test("every loader refuses a FIFO and a directory at once; every writer refuses them and leaves them as they were")
    func fifoAndDirectory() throws {
        let dir = try makeTempDir("dbm-special")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["f.npy", "f.safetensors", "f.idx", "f.txt", "f.jsonl", "f.gz"] { #expect(mkfifo(dir + "/" + name, 0o644) == 0) }
        try FileManager.default.createDirectory(atPath: dir + "/d.npy", withIntermediateDirectories: false)
        let loads = [
            "dbm.load_npy('\(dir)/f.npy')", "dbm.load_safetensors('\(dir)/f.safetensors')", "dbm.load_idx('\(dir)/f.idx')",
            "dbm.load_idx('\(dir)/f.gz')", "dbm.text_dataset('\(dir)/f.txt')", "dbm.load_npy('\(dir)/d.npy')",
            "local m = dbm.nn.Linear(2, 2); dbm.load_checkpoint('\(dir)/f.safetensors', {model = m})",
        ]
        let saves = [
            "dbm.save_npy('\(dir)/f.npy', dbm.zeros(2))", "dbm.save_safetensors('\(dir)/f.safetensors', {w = dbm.zeros(2)})",
            "dbm.jsonl('\(dir)/f.jsonl')", "dbm.write_file('\(dir)/f.txt', 'x')", "dbm.save_npy('\(dir)/d.npy', dbm.zeros(2))",
            "local m = dbm.nn.Linear(2, 2); dbm.save_checkpoint('\(dir)/f.safetensors', {model = m})",
        ]
        for code in loads + saves {
            let r = try run(dir, "local ok, e = pcall(function() \(code) end); print(ok, e)")
            #expect(r.status == 0, "\(code): status \(r.status) (124: it waited on the FIFO) \(r.stderr)")
            #expect(r.stdout.hasPrefix("false") && (r.stdout.contains("not a regular file") || r.stdout.contains("a FIFO")
                                                   || r.stdout.contains("a directory")), "\(code): \(r.stdout)")
        }
        for name in ["f.npy", "f.safetensors", "f.txt", "f.jsonl"] { #expect(fileType(dir + "/" + name) == .typeUnknown || isFIFO(dir + "/" + name), "\(name) replaced") }
        #expect(fileType(dir + "/d.npy") == .typeDirectory)
        let analyze = try run(dir, "", args: ["analyze", dir + "/f.safetensors"])
        #expect(analyze.status == 1 && analyze.stderr.contains("not a regular file"), "\(analyze.status) \(analyze.stderr)")
    }

    func isFIFO(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
    }

    @Test("a save onto a symbolic link writes its target and keeps the link")
    func symbolicLink() throws {
        let dir = try makeTempDir("dbm-special")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.npy", withDestinationPath: "real.npy")   // relative, not yet there
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link2.txt", withDestinationPath: dir + "/sub/t.txt")
        let r = try run(dir, """
            dbm.save_npy('\(dir)/link.npy', dbm.ones(3)); dbm.save_npy('\(dir)/link.npy', dbm.ones(4))
            dbm.write_file('\(dir)/link2.txt', 'one'); dbm.write_file('\(dir)/link2.txt', 'two')
            print(dbm.load_npy('\(dir)/real.npy'):numel(), io.open('\(dir)/sub/t.txt'):read('a'))
            """)
        #expect(r.status == 0 && r.stdout == "4\ttwo\n", "\(r.stdout) \(r.stderr)")
        #expect(fileType(dir + "/link.npy") == .typeSymbolicLink && fileType(dir + "/link2.txt") == .typeSymbolicLink)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
