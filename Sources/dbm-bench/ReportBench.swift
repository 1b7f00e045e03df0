import DBMCore
import Foundation

/// What drawing the plots during a run costs the training loop (issue 16): experiments/nanogpt.lua with
/// the `cpu` preset, 300 iterations (evaluations only at the first and the last, 10 batches each), once
/// without refreshes between them (--plot_every_s=1e9) and once with a refresh every 5 s (12 times the
/// default rate of one a minute), alternating, medians. A refresh is a child `dbm-lua report --refresh` at
/// the lowest priority (nice 19) drawing every matrix's plots with gnuplot; the loop's time is the one the
/// script prints. Target: at most 2% at the default rate. On a machine shared with other work the
/// difference is within the load's noise: quote it as such.
enum ReportBench {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func run(reps: Int) throws {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let binary = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("dbm-lua").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw DBMError("no dbm-lua next to dbm-bench: \(binary)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-bench-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func loopSeconds(every: String, rep: Int) throws -> (seconds: Double, refreshes: Int) {
            let out = dir + "/every\(every)-\(rep)"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [root + "/experiments/nanogpt.lua", "--preset=cpu", "--max_iters=300", "--eval_interval=1000",
                           "--eval_iters=10", "--plot_every_s=" + every, "--out_dir=" + out]
            let pipe = Pipe()
            p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            // "step 300: train loss …, val loss … (12.3 s)"
            guard p.terminationStatus == 0, let line = text.split(separator: "\n").first(where: { $0.hasPrefix("step 300:") }),
                  let open = line.lastIndex(of: "("), let seconds = Double(line[line.index(after: open)...].split(separator: " ")[0])
            else { throw DBMError("the nano-GPT run failed: \(text.suffix(400))") }
            return (seconds, Int((seconds / (Double(every) ?? 1e9)).rounded(.down)))
        }
        var without: [Double] = [], with: [Double] = [], refreshes = 0
        for r in 0..<max(1, min(reps, 3)) {
            without.append(try loopSeconds(every: "1e9", rep: r).seconds)
            let w = try loopSeconds(every: "5", rep: r)
            with.append(w.seconds); refreshes = w.refreshes
        }
        let (a, b) = (median(without), median(with))
        let cost = (b - a) / a * 100
        print(String(format: "report refresh, nano-GPT cpu preset, 300 iterations: loop %.1f s without refreshes, %.1f s with one every 5 s "
                     + "(about %d): %+.1f%%; at the default plot_every_s = 60, %+.2f%% (target <= 2%%; medians of %d; on a shared machine "
                     + "the load's noise is of this order)", a, b, refreshes, cost, cost / 12, without.count))
    }
}
