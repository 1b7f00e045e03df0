import DBMCore
import Foundation

/// What drawing the plots during a run costs the training loop (issue 16, target ≤ 2%): experiments/
/// nanogpt.lua with the `cpu` preset as a user runs it — a refresh at each evaluation (every 250 steps)
/// and at most every 60 s otherwise — for 500 iterations (evaluations of 50 batches, to keep the
/// benchmark short: refreshes then come more often than in the full run), against the same run with
/// --plots=false (no plots drawn; index.html still written). Alternating, medians. A refresh is a child
/// `dbm-lua report --refresh` at the lowest priority (SCHED_IDLE, nice 19) drawing every matrix's plots
/// with gnuplot; the loop's time is the one the script prints. On a machine shared with other work the
/// load's noise is of the order of the difference: quote it as such.
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
        func loopSeconds(plots: Bool, rep: Int) throws -> Double {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [root + "/experiments/nanogpt.lua", "--preset=cpu", "--max_iters=500", "--eval_iters=50",
                           "--plots=\(plots)", "--out_dir=" + dir + "/plots-\(plots)-\(rep)"]
            let pipe = Pipe()
            p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            // "step 500: train loss …, val loss … (12.3 s)"
            guard p.terminationStatus == 0, let line = text.split(separator: "\n").first(where: { $0.hasPrefix("step 500:") }),
                  let open = line.lastIndex(of: "("), let seconds = Double(line[line.index(after: open)...].split(separator: " ")[0])
            else { throw DBMError("the nano-GPT run failed: \(text.suffix(400))") }
            return seconds
        }
        var without: [Double] = [], with: [Double] = []
        for r in 0..<max(1, min(reps, 3)) {
            without.append(try loopSeconds(plots: false, rep: r))
            with.append(try loopSeconds(plots: true, rep: r))
        }
        let (a, b) = (median(without), median(with))
        print(String(format: "report refresh, nano-GPT cpu preset, 500 iterations (3 evaluations): training loop %.1f s with --plots=false, "
                     + "%.1f s with the plots refreshed at each evaluation and every 60 s: %+.1f%% (target <= 2%%; medians of %d; "
                     + "runs %@ against %@ s)", a, b, (b - a) / a * 100, without.count,
                     with.map { String(format: "%.1f", $0) }.joined(separator: ", "), without.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
    }
}
