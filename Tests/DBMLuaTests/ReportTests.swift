import Foundation
import Testing
import DBMCore
#if canImport(Glibc)
import Glibc
#endif

/// Watching a run while it runs: the plots and index.html a refresh draws in the background, `dbm-lua
/// report` on any run directory, the page as Chromium renders it, and the TensorBoard event files as
/// TensorBoard's own reader reads them.
@Suite("Reports: live plots, index.html, dbm-lua report, TensorBoard event files", .serialized)
struct ReportTests {
    static let root = NanoGPTTests.root
    static let tools = root + "/Tests/tools/"

    /// A PNG written whole: its signature first, its IEND chunk last.
    func completePNG(_ path: String) -> Bool {
        guard let d = FileManager.default.contents(atPath: path), d.count > 20 else { return false }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let iend: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
        return Array(d.prefix(8)) == signature && Array(d.suffix(12)) == iend
    }

    func python(_ tool: String, _ args: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/env", ["python3", Self.tools + tool] + args)
    }

    func htmlParses(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path) && ((try? python("check_html.py", [path]))?.status == 0)
    }

    func pngs(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/plots")) ?? []).filter { $0.hasSuffix(".png") && !$0.hasPrefix(".") }.sorted()
    }

    /// Waits until no refresh holds plots/.refresh.lock (a background `dbm-lua report --refresh` may outlive a killed run).
    func waitForRefresh(_ dir: String) {
        let fd = open(dir + "/plots/.refresh.lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        for _ in 0..<1200 where flock(fd, LOCK_EX | LOCK_NB) != 0 { usleep(100_000) }
    }

    /// index.html in headless Chromium: no console error, no failed request, no network address, a
    /// non-blank screenshot, and every PNG of plots/ shown.
    func expectRenders(_ page: String, plots: [String]) throws {
        let r = try python("render_html.py", [page])
        if r.status == 3 { print("render \(page): skipped, chromium is not installed (scripts/setup installs it)"); return }
        #expect(r.status == 0, "\(page): \(r.stdout)\(r.stderr)")
        let shown = Set(r.stdout.split(separator: "\n").filter { $0.hasPrefix("IMG plots/") }.map { String($0.dropFirst(10)) })
        #expect(shown == Set(plots), "\(page): shown \(shown.sorted()), in plots/ \(plots)")
        print("render \(page): \(r.stdout.split(separator: "\n").first ?? "")")
    }

    @Test("a nano-GPT run shows its loss plot, a density plot and index.html, each whole, while it runs; a SIGKILL leaves them; Chromium renders the page; TensorBoard reads val_loss and the levels' histograms")
    func liveRunKilled() throws {
        try #require(FileManager.default.fileExists(atPath: NanoGPTTests.corpus), "scripts/setup fetches the corpus")
        let dir = try makeTempDir("report-live")
        defer { waitForRefresh(dir); try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try dbmLuaBinary())
        p.arguments = [NanoGPTTests.script] + NanoGPTTests.small
            + ["--max_iters=3000", "--eval_interval=20", "--eval_iters=5", "--spectra_every=20", "--plot_every_s=0.5", "--out_dir=" + dir]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let start = Date()
        var found: (loss: Bool, density: String?, index: Bool) = (false, nil, false)
        while Date().timeIntervalSince(start) < 240 && p.isRunning {
            found.loss = completePNG(dir + "/plots/metrics.png")
            found.density = pngs(dir).first { $0.hasSuffix("_density.png") && completePNG(dir + "/plots/" + $0) }
            found.index = htmlParses(dir + "/index.html")
            if found.loss && found.density != nil && found.index { break }
            usleep(200_000)
        }
        let running = p.isRunning && !FileManager.default.fileExists(atPath: dir + "/DONE")
        #expect(running, "the run ended before its plots were found")
        #expect(found.loss && found.density != nil && found.index, "while running: \(found), plots \(pngs(dir))")
        let html = (try? String(contentsOfFile: dir + "/index.html", encoding: .utf8)) ?? ""
        #expect(html.contains("running, step") && html.contains("of 3000") && html.contains("http-equiv=\"refresh\""), "\(html.prefix(800))")
        print("live: loss plot, \(found.density ?? "-") and index.html after \(String(format: "%.1f", Date().timeIntervalSince(start))) s")

        usleep(UInt32.random(in: 0..<2_000_000))   // a SIGKILL at a random moment
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(completePNG(dir + "/plots/metrics.png") && completePNG(dir + "/plots/" + (found.density ?? "-")))
        #expect(htmlParses(dir + "/index.html"))
        let tb = try python("check_tensorboard.py", [dir])
        #expect(tb.status == 0, "after SIGKILL: \(tb.stdout)\(tb.stderr)")
        print("tensorboard after SIGKILL: \(tb.stdout)")

        waitForRefresh(dir)
        let r = try runProcess(try dbmLuaBinary(), ["report", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let page = (try? String(contentsOfFile: dir + "/index.html", encoding: .utf8)) ?? ""
        #expect(page.contains("ended without DONE") && !page.contains("http-equiv"), "\(page.prefix(800))")
        try expectRenders(dir + "/index.html", plots: pngs(dir))
    }

    @Test("TensorBoard's reader reads a finished nano-GPT run: val_loss as in metrics.jsonl, each matrix's levels (count, min, max) at every recorded step")
    func tensorboardFinishedRun() throws {
        try #require(FileManager.default.fileExists(atPath: NanoGPTTests.corpus), "scripts/setup fetches the corpus")
        let dir = try makeTempDir("report-tb")
        defer { waitForRefresh(dir); try? FileManager.default.removeItem(atPath: dir) }
        let r = try runProcess(try dbmLuaBinary(), [NanoGPTTests.script] + NanoGPTTests.small
            + ["--max_iters=40", "--eval_interval=10", "--eval_iters=2", "--spectra_every=10", "--out_dir=" + dir])
        try #require(r.status == 0, "\(r.stderr)")
        let tb = try python("check_tensorboard.py", [dir])
        #expect(tb.status == 0 && tb.stdout.contains("val_loss=5"), "\(tb.stdout)\(tb.stderr)")
        print("tensorboard: \(tb.stdout)")
        let off = try runProcess(try dbmLuaBinary(), ["-e", "print(require('dbm.tensorboard').crc32c('123456789'))"])
        #expect(off.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(0xE306_9283)", "CRC-32C check value: \(off.stdout)")
    }

    /// A run directory as the recorder wrote it before this change: no index.html, plots, event files,
    /// summary.json, total_steps or shared config keys.
    static let olderRun = """
    local cfg = dbm.config({steps = 30, note = "<script>alert('x')</script> & \\"q\\"", out_dir = ""})
    local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg, plots = false, tensorboard = false}
    local W = dbm.randn(40, 20)
    rec:watch("W1", function() return W end, {diagnostics = {"spacing", "mp"}, every = 10})
    for s = 0, cfg.steps do W = W + dbm.randn(40, 20) * 0.01; rec:step(s, {train_loss = 1 / (s + 1), val_loss = 2 / (s + 1)}) end
    dbm.write_summary(rec.dir, {title = "older <run>", notes = {"a & b < c"}, figures = {header = {"x", "y"}, rows = {{"<i>", 1.5}}}})
    rec:close()
    """

    @Test("dbm-lua report on a run directory from before index.html draws its plots and a page that escapes every name and renders in Chromium")
    func reportOfAnOlderRun() throws {
        let dir = try makeTempDir("report-older")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.olderRun.write(toFile: dir + "/older.lua", atomically: true, encoding: .utf8)
        let run = dir + "/run"
        let made = try runProcess(try dbmLuaBinary(), [dir + "/older.lua", "--out_dir=" + run])
        try #require(made.status == 0, "\(made.stderr)")
        // back to the older layout
        let fm = FileManager.default
        for f in ["index.html", "summary.json", "plots"] { try? fm.removeItem(atPath: run + "/" + f) }
        var meta = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/config.json"))) as? [String: Any])
        var config = try #require(meta["config"] as? [String: Any])
        for k in ["plot_every_s", "tensorboard"] { config.removeValue(forKey: k) }
        meta["config"] = config
        meta.removeValue(forKey: "total_steps")
        try JSONSerialization.data(withJSONObject: meta).write(to: URL(fileURLWithPath: run + "/config.json"))

        let r = try runProcess(try dbmLuaBinary(), ["report", run])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let plots = pngs(run)
        for want in ["metrics.png", "W1_density.png", "W1_flow.png", "W1_spacing.png"] {
            #expect(plots.contains(want) && completePNG(run + "/plots/" + want), "\(want) in \(plots)")
        }
        #expect(htmlParses(run + "/index.html"))
        let html = try String(contentsOfFile: run + "/index.html", encoding: .utf8)
        #expect(html.contains("done: step 30") && !html.contains("<script") && html.contains("&lt;script&gt;alert(&#39;x&#39;)"))
        #expect(html.contains("older &lt;run&gt;") && html.contains("a &amp; b &lt; c"), "the summary, escaped, from summary.md")
        try expectRenders(run + "/index.html", plots: plots)
    }

    @Test("a sweep's index.html links every point's report and shows the collected table and plots; Chromium renders it")
    func sweepIndex() throws {
        let (dir, script) = try SweepTests().setup("report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sweep = dir + "/sweep"
        let r = try runProcess(try dbmLuaBinary(), ["sweep", script, "--grid", "lr=0.1,0.05", "--grid", "seed=1-2", "--jobs", "2", "--out_dir", sweep])
        try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
        let c = try runProcess(try dbmLuaBinary(), ["sweep", "collect", sweep, "--plot", "metric.val_loss", "--x", "lr"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(htmlParses(sweep + "/index.html"))
        let html = try String(contentsOfFile: sweep + "/index.html", encoding: .utf8)
        for point in ["lr=0.1,seed=1", "lr=0.1,seed=2", "lr=0.05,seed=1", "lr=0.05,seed=2"] {
            let link = point.replacingOccurrences(of: "=", with: "%3D").replacingOccurrences(of: ",", with: "%2C") + "/index.html"
            #expect(html.contains("href=\"\(link)\"") && htmlParses(sweep + "/" + point + "/index.html"), "\(point)")
        }
        try expectRenders(sweep + "/index.html", plots: pngs(sweep))
        let again = try runProcess(try dbmLuaBinary(), ["report", sweep])
        #expect(again.status == 0 && again.stdout.contains("index.html"), "\(again.stdout)\(again.stderr)")
    }
}
