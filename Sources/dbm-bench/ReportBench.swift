import DBMCore
import Foundation

/// What drawing the plots during a run costs the training loop (issue 16, target ≤ 2%), measured inside
/// one run so that the load of a shared machine falls on both sides alike: experiments/nanogpt.lua with
/// the `cpu` preset runs with --plots=false while this benchmark alternates a stretch without a refresh (as
/// long as the last refresh took, at least 8 s) and one refresh exactly as the recorder starts it (`chrt -i 0
/// nice -n 19 dbm-lua report --refresh DIR`, drawing every matrix's plots with gnuplot; its CPU time from
/// /usr/bin/time), three times; between them it counts the steps in metrics.jsonl. The
/// steps per second while a refresh draws against while none does give the share of the loop lost while
/// one draws; times the share of the time refreshes draw at the preset's rate (one per evaluation, every
/// 250 steps, or every 60 s, whichever comes first; all the time when a refresh takes longer than that,
/// as the next one waits for it), the cost of the refreshes to the loop. The run is killed at the end.
enum ReportBench {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func run(reps: Int) throws {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let binary = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("dbm-lua").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw DBMError("no dbm-lua next to dbm-bench: \(binary)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-bench-report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = [root + "/experiments/nanogpt.lua", "--preset=cpu", "--max_iters=100000", "--eval_interval=100000",
                       "--eval_iters=10", "--plots=false", "--out_dir=" + dir]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        var offset: UInt64 = 0, steps = 0
        func newSteps() throws -> Int {   // lines appended to metrics.jsonl since the last call
            guard let h = FileHandle(forReadingAtPath: dir + "/metrics.jsonl") else { return 0 }
            try h.seek(toOffset: offset)
            let d = h.readDataToEndOfFile()
            try h.close()
            let end = d.lastIndex(of: UInt8(ascii: "\n")).map { $0 - d.startIndex + 1 } ?? 0
            offset += UInt64(end)
            return d.prefix(end).filter { $0 == UInt8(ascii: "\n") }.count
        }
        while steps == 0 && p.isRunning { usleep(10_000); steps += try newSteps() }   // model and data built
        var busy = (steps: 0, seconds: 0.0), idle = (steps: 0, seconds: 0.0), refreshes = 0, cpu = 0.0, took = 8.0
        for _ in 0..<3 {
            var t0 = now()
            while now() - t0 < took { usleep(10_000) }
            idle.steps += try newSteps(); idle.seconds += now() - t0
            let r = Process()
            r.executableURL = URL(fileURLWithPath: "/bin/sh")
            r.arguments = ["-c", "/usr/bin/time -f '%U %S' chrt -i 0 nice -n 19 \"$0\" report --refresh \"$1\" 2>&1 >/dev/null | tail -1",
                           binary, dir]
            let out = Pipe()
            r.standardOutput = out
            t0 = now()
            try r.run()
            let times = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
            r.waitUntilExit()
            took = max(8, now() - t0)
            busy.steps += try newSteps(); busy.seconds += now() - t0
            cpu += times.compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.reduce(0, +)
            refreshes += 1
        }
        guard p.isRunning, busy.steps > 0, idle.steps > 0 else { throw DBMError("the nano-GPT run ended or stalled during the benchmark") }
        let (rBusy, rIdle) = (Double(busy.steps) / busy.seconds, Double(idle.steps) / idle.seconds)
        let perRefresh = busy.seconds - Double(busy.steps) / rIdle      // loop seconds one refresh costs
        let presetInterval = min(250 / rIdle, 60)                       // one refresh per evaluation or per 60 s
        let drawing = min(1, busy.seconds / Double(refreshes) / presetInterval)   // share of the time a refresh draws
        let cost = (1 - rBusy / rIdle) * drawing
        print(String(format: "report refresh, nano-GPT cpu preset (%.0f ms/step without a refresh drawing): a refresh took %.1f s "
                     + "(%.1f s of CPU), steps %+.1f%% slower meanwhile (%.2f s of the loop per refresh); at the preset's rate (one per "
                     + "%.0f s: each evaluation, or 60 s) refreshes draw %.0f%% of the time: %.2f%% of the loop (target <= 2%%; %d refreshes "
                     + "against %.0f s without; load average %@)", 1000 / rIdle, busy.seconds / Double(refreshes), cpu / Double(refreshes),
                     (rIdle / rBusy - 1) * 100, perRefresh / Double(refreshes), presetInterval, drawing * 100, cost * 100, refreshes,
                     idle.seconds, ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")))
    }
}
