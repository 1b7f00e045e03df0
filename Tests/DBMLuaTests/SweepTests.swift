import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `dbm-lua sweep` on a tiny script: each point appends "start" to starts.txt in its run directory,
/// records three metrics, busy-waits `sleep` seconds, and closes its recorder (DONE last).
@Suite("dbm-lua sweep: grids of runs, resumable, locked, collected")
struct SweepTests {
    static let script = """
    local cfg = dbm.config({lr = 0.1, batch_size = 16, seed = 1, sleep = 0.0, fail = false, out_dir = ""})
    local f = io.open(cfg.out_dir .. "/starts.txt", "a"); f:write("start\\n"); f:close()
    if cfg.fail and cfg.seed == 2 then error("asked to fail") end
    local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg, plots = false}
    local t0 = dbm.clock()
    while dbm.clock() - t0 < cfg.sleep do end
    for s = 1, 3 do rec:step(s, {train_loss = cfg.lr * s, val_loss = cfg.lr / s + cfg.seed}) end
    rec:close()
    """

    func setup(_ name: String) throws -> (dir: String, script: String) {
        let dir = try makeTempDir("sweep-\(name)")
        let script = dir + "/point.lua"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        return (dir, script)
    }

    func starts(_ dir: String) -> Int {
        ((try? String(contentsOfFile: dir + "/starts.txt", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func pointDirs(_ sweep: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sweep)) ?? [])
            .filter { var d: ObjCBool = false; return FileManager.default.fileExists(atPath: sweep + "/" + $0, isDirectory: &d) && d.boolValue }
            .sorted().map { sweep + "/" + $0 }
    }

    @Test("bad grids are rejected before anything runs, naming the bad part")
    func badGrids() throws {
        let (dir, script) = try setup("bad")
        let sweep = dir + "/sweep"
        let cases: [([String], String)] = [
            (["--grid", "nope=1,2"], "unknown key 'nope'"),
            (["--grid", "lr="], "empty list"),
            (["--grid", "seed=5-1"], "malformed range '5-1'"),
            (["--grid", "seed=1-x"], "malformed range '1-x'"),
            (["--grid", "batch_size=abc"], "'abc' is not an integer"),
            (["--grid", "batch_size=1.5"], "'1.5' is not an integer"),
            (["--grid", "lr=0.1,fast"], "'fast' is not a number"),
            (["--grid", "seed=1,2", "--grid", "seed=3"], "'seed' given twice"),
            (["--grid", "out_dir=a,b"], "out_dir is set by the sweep"),
            (["--grid", "seed=1,2", "--set", "nope=3"], "unknown key 'nope'"),
        ]
        for (args, message) in cases {
            let r = try runProcess(try dbmLuaBinary(), ["sweep", script] + args + ["--out_dir", sweep])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: sweep), "\(args) created \(sweep)")
        }
    }

    @Test("a sweep killed midway and run again completes exactly the missing points")
    func killAndResume() throws {
        let (dir, script) = try setup("kill")
        let sweep = dir + "/sweep"
        let args = ["sweep", script, "--grid", "lr=0.1,0.05", "--grid", "seed=1-3", "--set", "sleep=0.5", "--jobs", "2", "--out_dir", sweep]
        // Foundation starts the sweep as the leader of its own process group, so one kill reaches it
        // and its points (as Ctrl-C or a batch system's kill would).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try dbmLuaBinary())
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        var done = 0
        while Date() < deadline {
            done = pointDirs(sweep).filter { FileManager.default.fileExists(atPath: $0 + "/DONE") }.count
            if done >= 2 { break }
            usleep(20_000)
        }
        usleep(150_000)   // the next points are mid-run
        #expect(getpgid(p.processIdentifier) == p.processIdentifier, "the sweep does not lead its process group")
        kill(-p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let doneBefore = Set(pointDirs(sweep).filter { FileManager.default.fileExists(atPath: $0 + "/DONE") })
        let startedBefore = Set(pointDirs(sweep).filter { starts($0) > 0 })
        #expect(doneBefore.count >= 2 && doneBefore.count < 6, "\(doneBefore.count) points done when killed")
        #expect(startedBefore.count > doneBefore.count, "no point was mid-run when killed")

        let r = try runProcess(try dbmLuaBinary(), args)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("\(6 - doneBefore.count) ran ok, \(doneBefore.count) already done, 0 failed"), "\(r.stdout)")
        let dirs = pointDirs(sweep)
        #expect(dirs.count == 6)
        for d in dirs {
            #expect(FileManager.default.fileExists(atPath: d + "/DONE"), "\(d) not done")
            let expected = doneBefore.contains(d) ? 1 : (startedBefore.contains(d) ? 2 : 1)
            #expect(starts(d) == expected, "\(d): \(starts(d)) starts, expected \(expected)")
        }
        print("kill/resume: \(doneBefore.count) done and \(startedBefore.count - doneBefore.count) killed mid-run at the kill; "
              + "after the rerun all 6 done, starts = \(dirs.map { starts($0) })")
    }

    @Test("a failed point is recorded with its log and the others go on; a locked point is skipped; collect")
    func failuresLocksCollect() throws {
        let (dir, script) = try setup("fail")
        let sweep = dir + "/sweep"
        // Another process holds the lock of point lr=0.05,seed=1: this sweep must not run it.
        let locked = sweep + "/lr=0.05,seed=1"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        // O_CLOEXEC: processes that other tests start meanwhile must not inherit (and keep) the lock.
        let fd = open(locked + "/sweep.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let args = ["sweep", script, "--grid", "lr=0.1,0.05", "--grid", "seed=1-3", "--set", "fail=true", "--jobs", "2", "--out_dir", sweep]
        let r = try runProcess(try dbmLuaBinary(), args)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("3 ran ok, 0 already done, 2 failed, 1 locked by another process"), "\(r.stdout)")
        #expect(starts(locked) == 0)
        let failedLog = (try? String(contentsOfFile: sweep + "/lr=0.1,seed=2/sweep.log", encoding: .utf8)) ?? ""
        #expect(failedLog.contains("asked to fail"), "\(failedLog)")
        let status = (try? String(contentsOfFile: sweep + "/lr=0.1,seed=2/sweep-status.json", encoding: .utf8)) ?? ""
        #expect(status.contains("\"status\":\"failed\""), "\(status)")
        close(fd)

        // --point runs exactly one point of the manifest; then collect.
        let one = try runProcess(try dbmLuaBinary(), ["sweep", "--point", "3", sweep])
        #expect(one.status == 0, "\(one.stdout)\n\(one.stderr)")
        #expect(starts(locked) == 1)
        let c = try runProcess(try dbmLuaBinary(), ["sweep", "collect", sweep])
        #expect(c.status == 0, "\(c.stderr)")
        let lines = ((try? String(contentsOfFile: sweep + "/results.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines.first?.contains("\"param.seed\":1") == true && lines.first?.contains("\"metric.val_loss\":") == true, "\(lines)")
        #expect(lines.filter { $0.contains("\"status\":\"failed\"") }.count == 2)
        let csv = ((try? String(contentsOfFile: sweep + "/results.csv", encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(csv.first == "param.lr,param.seed,status,metric.train_loss,metric.val_loss", "\(csv)")
        #expect(csv.count == 7)
    }

    @Test("--slurm writes a job-array batch script; run per SLURM_ARRAY_TASK_ID it completes the sweep")
    func slurmBatchScript() throws {
        let (dir, script) = try setup("slurm")
        let sweep = dir + "/sweep"
        let r = try runProcess(try dbmLuaBinary(), ["sweep", script, "--grid", "seed=1-5", "--slurm", "--array-chunk", "2",
                                                    "--partition", "debug", "--time", "00:05:00", "--out_dir", sweep])
        #expect(r.status == 0, "\(r.stderr)")
        let text = (try? String(contentsOfFile: sweep + "/sweep.sbatch", encoding: .utf8)) ?? ""
        #expect(text.contains("#SBATCH --array=0-2"), "\(text)")
        #expect(text.contains("#SBATCH --partition=debug") && text.contains("#SBATCH --time=00:05:00"))
        #expect(text.contains("#SBATCH --output=\(sweep)/slurm-%A_%a.out"))
        #expect(pointDirs(sweep).isEmpty, "--slurm ran points locally")
        for task in 0..<3 {
            var env = ProcessInfo.processInfo.environment
            env["SLURM_ARRAY_TASK_ID"] = String(task)
            let t = try runProcess("/bin/bash", [sweep + "/sweep.sbatch"], environment: env)
            #expect(t.status == 0, "\(t.stdout)\n\(t.stderr)")
        }
        let dirs = pointDirs(sweep)
        #expect(dirs.count == 5)
        for d in dirs { #expect(FileManager.default.fileExists(atPath: d + "/DONE") && starts(d) == 1, "\(d)") }
    }

    @Test("values written into sweep.sbatch are checked against Slurm's syntax: a line break never reaches the script")
    func slurmOptionsChecked() throws {
        let (dir, script) = try setup("slurm-hostile")
        let bin = try dbmLuaBinary()
        let bad: [(String, String)] = [("--partition", "short\nrm -rf X"), ("--partition", "a b"), ("--time", "00:05:00\ntouch X"),
                                       ("--time", "soon"), ("--cpus-per-task", "2\n"), ("--cpus-per-task", "0"), ("--array-chunk", "-1")]
        for (option, value) in bad {
            let sweep = dir + "/sweep"
            let r = try runProcess(bin, ["sweep", script, "--grid", "seed=1-2", "--slurm", option, value, "--out_dir", sweep])
            #expect(r.status != 0 && r.stderr.contains(option) && r.stderr.contains("expected"), "\(option) \(value): \(r.stderr)")
            #expect(!r.stderr.dropLast().contains("\n"), "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: sweep + "/sweep.sbatch"), "\(option) \(value) wrote a batch script")
        }
        let odd = dir + "/sweep\nX"
        let r = try runProcess(bin, ["sweep", script, "--grid", "seed=1-2", "--slurm", "--out_dir", odd])
        #expect(r.status != 0 && r.stderr.contains("control characters"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: odd + "/sweep.sbatch"))
        let good = try runProcess(bin, ["sweep", script, "--grid", "seed=1-2", "--slurm", "--partition", "short,long", "--time", "1-02:30",
                                        "--cpus-per-task", "2", "--out_dir", dir + "/ok"])
        #expect(good.status == 0, "\(good.stderr)")
    }

    @Test("the sweep checks its grid with the script's own type rule, presets and rules (dbm.config), before anything runs")
    func gridCheckedByTheScript() throws {
        let dir = try makeTempDir("dbm-sweep-rules")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/ruled.lua"
        try """
        local cfg = dbm.config({preset = "a", seed = 1, tag = "x", out_dir = ""}, {
          presets = {a = {n = 2, p = 0.5}, b = {n = 4, p = 0.25}},
          rules = {n = {positive = true}, p = {min = 0, below = 1}, tag = {check = function() return nil end}},
        })
        dbm.recorder{out_dir = cfg.out_dir, config = cfg, plots = false}:close()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--grid", "n=2,0"], "--grid 'n=2,0': --n: expected a positive integer, got 0"),
            (["--grid", "n=-1-2"], "--n: expected a positive integer, got -1"),
            (["--grid", "p=0.5,1"], "--p: expected a number in [0, 1), got 1.0"),
            (["--grid", "preset=a,c"], "--preset: expected one of a, b, got c"),
            (["--grid", "seed=1", "--set", "n=x"], "--set 'n=x': --n: 'x' is not an integer"),
            (["--grid", "p=fast"], "'fast' is not a number"),
        ]
        for (args, message) in cases {
            let r = try runProcess(try dbmLuaBinary(), ["sweep", script] + args + ["--out_dir", dir + "/s"])
            #expect(r.status == 2 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/s"), "\(args) created the sweep")
        }
        // A range-shaped value of a string key is that text; preset keys and values are the script's.
        let ok = try runProcess(try dbmLuaBinary(), ["sweep", script, "--grid", "preset=a,b", "--grid", "tag=1-2",
                                                     "--set", "n=3", "--jobs", "1", "--out_dir", dir + "/ok"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/ok")) ?? []).filter { $0.hasPrefix("preset=") }.sorted()
        #expect(names == ["preset=a,tag=1-2", "preset=b,tag=1-2"], "\(names)")
        let c = try runProcess(try dbmLuaBinary(), ["sweep", "collect", dir + "/ok"])
        let rows = try String(contentsOfFile: dir + "/ok/results.jsonl", encoding: .utf8)
        #expect(c.status == 0 && rows.contains("\"param.tag\":\"1-2\"") && rows.contains("\"param.preset\":\"b\""), "\(rows)")
    }

    @Test("a script that never reaches dbm.config is stopped when the sweep reads its keys, with a message")
    func configKeysTimeLimit() throws {
        let dir = try makeTempDir("dbm-sweep-loop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "while true do end\nlocal cfg = dbm.config({lr = 0.1})\n".write(toFile: dir + "/loop.lua", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["DBM_SWEEP_CONFIG_SECONDS"] = "1"
        let t0 = Date()
        let r = try runProcess(try dbmLuaBinary(), ["sweep", dir + "/loop.lua", "--grid", "lr=0.1,0.2", "--out_dir", dir + "/s"], environment: env)
        #expect(r.status != 0 && r.stderr.contains("did not reach dbm.config"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(t0) < 20)
    }
}
