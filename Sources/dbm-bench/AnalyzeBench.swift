import DBMCore
import DBMLua
import Foundation

/// `dbm-lua analyze` on a model folder of GPT-2 small's layout (issue 15, Must hold: ≤ 6 s on 2 cores,
/// peak RSS ≤ 800 MB): 124M parameters under Hugging Face's names, BF16, 3 shards with an index, random
/// weights written by scripts/gpt2_layout_model.py; all default plugins. The command runs as a child
/// process under /usr/bin/time (wall time, peak resident memory, and the CPU time, which says what the
/// wall time would be on two idle cores when the machine is shared); medians of 3 runs. For context, the
/// eigensolver alone: eigvalsh of the 50 Gram matrices (768×768 each) one after the other, and the Gram
/// matrix of the 50257×768 embedding, the largest product.
enum AnalyzeBench {
    static func run() throws {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ProcessInfo.processInfo.arguments[0]
        let binDir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        let dbmLua = binDir + "/dbm-lua"
        guard FileManager.default.isExecutableFile(atPath: dbmLua) else {
            print("analyze GPT-2 small: skipped (no dbm-lua next to dbm-bench: run `swift build -c release`)"); return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-bench-gpt2-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = try run("/usr/bin/env", ["python3", "scripts/gpt2_layout_model.py", dir])
        guard gen.status == 0 else { throw DBMError("scripts/gpt2_layout_model.py failed: \(gen.output)") }

        var seconds: [Double] = [], peaks: [Double] = [], cpu: [Double] = []
        for _ in 0..<3 {
            let r = try run("/usr/bin/time", ["-f", "TIME %e %M %U %S", dbmLua, "analyze", dir, "--json"])
            guard r.status == 0, let line = r.output.split(separator: "\n").last(where: { $0.hasPrefix("TIME ") }) else {
                throw DBMError("dbm-lua analyze failed: \(r.output.suffix(500))")
            }
            let f = line.split(separator: " ")
            seconds.append(Double(f[1]) ?? .nan); peaks.append((Double(f[2]) ?? .nan) / 1024)
            cpu.append((Double(f[3]) ?? .nan) + (Double(f[4]) ?? .nan))
        }
        let lua = try LuaState()
        let eig = try Bench.luaTimed(lua, """
            local g = dbm.gram(dbm.randn(768, 3072, {generator = dbm.generator(1)}))
            for i = 1, 50 do local e = dbm.eigvalsh(g) end
            """)
        let gram = try Bench.luaTimed(lua, "local g = dbm.gram(dbm.randn(50257, 768, {generator = dbm.generator(2)}))")
        print(String(format: "analyze GPT-2 small (124M parameters, BF16, 3 shards + index, 50 matrices, default plugins; BLAS: %@): "
                     + "%.2f s, peak RSS %.0f MB (targets <= 6 s, <= 800 MB; medians of 3, runs %@), CPU time (user + system) %.2f s; "
                     + "for context: eigvalsh of 50 768x768 Gram matrices one after the other %.2f s, Gram of the 50257x768 embedding (with its randn) %.2f s",
                     BLASInfo.current.summary, median(seconds), median(peaks),
                     seconds.map { String(format: "%.2f", $0) }.joined(separator: ", "), median(cpu), eig, gram))
    }

    /// Runs a command; its status and its stdout and stderr together (stdout of analyze goes to /dev/null).
    static func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
