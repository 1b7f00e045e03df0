import DBMCore
import Foundation

/// `dbm-lua sweep` on this machine: 8 equal points (a fixed amount of Lua arithmetic each, with a
/// recorder and DONE) run one at a time and then with --jobs 2; the issue asks for the parallel wall
/// time ≤ 1.15 × (the serial time / 2) on 2 cores. Startup, the config check and process creation
/// are part of both times.
enum SweepBench {
    static let script = """
    local cfg = dbm.config({seed = 1, work = 16000000, out_dir = ""})
    local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg, plots = false}
    local x = 0.0
    for i = 1, cfg.work do x = x + math.sin(i * 1e-3 + cfg.seed) end
    rec:step(1, {sum = x})
    rec:close()
    """

    static func run() throws {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let binary = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("dbm-lua").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw DBMError("no dbm-lua next to dbm-bench: \(binary)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-bench-sweep-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try script.write(toFile: dir + "/point.lua", atomically: true, encoding: .utf8)
        func sweep(jobs: Int, rep: Int) throws -> Double {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["sweep", dir + "/point.lua", "--grid", "seed=1-8", "--jobs", String(jobs), "--out_dir", dir + "/jobs\(jobs)-\(rep)"]
            p.standardOutput = FileHandle.nullDevice
            let t0 = now()
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw DBMError("the sweep with --jobs \(jobs) failed") }
            return now() - t0
        }
        // Serial and parallel alternate, so that both see the same load on a shared machine; medians of 3.
        var serial: [Double] = [], parallel: [Double] = []
        for r in 0..<3 {
            serial.append(try sweep(jobs: 1, rep: r))
            parallel.append(try sweep(jobs: 2, rep: r))
        }
        let ratios = zip(serial, parallel).map { $1 / ($0 / 2) }
        print(String(format: "sweep of 8 equal points: serial %.2f s, --jobs 2 %.2f s = %.3f × (serial / 2) (target <= 1.15 on 2 cores; medians of 3, ratios %@)",
                     median(serial), median(parallel), median(parallel) / (median(serial) / 2),
                     ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ")))
    }
}

