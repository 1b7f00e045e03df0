import Foundation
import Testing
import DBMCore
import DBMLua

/// The recorder as a user meets it: diagnostics plugins dropped into $DBM_LUA_PATH with no rebuild,
/// failing plugins reported once with their file and line, run directories that python reads back,
/// a run killed with SIGKILL or stopped with Ctrl-C and resumed, plots, and the matrix Brownian motion demo.
@Suite("Recorder, diagnostics runner, plots, progress")
struct RecorderTests {
    func tempDir() throws -> String { try makeTempDir("dbm-rec") }

    /// Reads a run directory back with python: config.json, every line of metrics.jsonl and
    /// observables.jsonl, spectra/*.npy (2-D Float64, rows = records, ascending levels; rows match
    /// steps.npy or the matrix's own .steps.npy, one more row allowed after a kill). Prints a summary.
    static let validator = """
    import json, os, sys
    import numpy as np
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "config.json")))
    for key in ("config", "dbm_lua_version", "start_time", "host", "watch"):
        assert key in cfg, "config.json lacks " + key
    lines = {}
    for name in ("metrics.jsonl", "observables.jsonl"):
        rows = [json.loads(l) for l in open(os.path.join(d, name))]
        assert all("step" in r for r in rows), name
        lines[name] = rows
    assert all(list(r)[:2] == ["step", "time"] for r in lines["metrics.jsonl"])
    assert all(list(r)[:3] == ["step", "matrix", "diagnostic"] for r in lines["observables.jsonl"])
    sp = os.path.join(d, "spectra")
    steps = np.load(os.path.join(sp, "steps.npy"))
    assert steps.ndim == 1 and steps.dtype == np.int64
    shapes = {}
    for f in sorted(os.listdir(sp)):
        if not f.endswith(".npy") or f == "steps.npy" or f.endswith(".steps.npy"):
            continue
        a = np.load(os.path.join(sp, f))
        own = os.path.join(sp, f[:-4] + ".steps.npy")
        st = np.load(own) if os.path.exists(own) else steps
        assert a.ndim == 2 and a.dtype == np.float64, (f, a.shape, a.dtype)
        assert len(st) <= a.shape[0] <= len(st) + 1, (f, a.shape, len(st))
        assert np.all(np.diff(a, axis=1) >= 0), f + ": levels not ascending"
        shapes[f[:-4]] = list(a.shape)
    print(json.dumps({"metrics": len(lines["metrics.jsonl"]), "observables": len(lines["observables.jsonl"]),
                      "steps": len(steps), "last_step": int(steps[-1]) if len(steps) else None, "spectra": shapes}))
    """

    func validate(_ dir: String) throws -> [String: Any] {
        let script = dir + "/../validate.py"
        try RecorderTests.validator.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runProcess("/usr/bin/env", ["python3", script, dir])
        #expect(r.status == 0, "python could not read the run directory \(dir):\n\(r.stdout)\n\(r.stderr)")
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? "{}"
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    static var haveGnuplot: Bool {
        (try? runProcess("/bin/sh", ["-c", "command -v gnuplot"]).status) == 0
    }

    /// Temporary plugins in a folder for $DBM_LUA_PATH: one good, one raising on line 3, one garbage.
    func writePlugins(_ dir: String) throws {
        try """
        return {name = "tmp_scalar", doc = "the largest level and the count", run = function(ctx)
          local x = ctx.levels
          return {tmp_top = x[#x], tmp_count = #x, spacings = {1, 1, 1}}
        end}
        """.write(toFile: dir + "/tmp_scalar.lua", atomically: true, encoding: .utf8)
        try """
        return {name = "tmp_raise", doc = "always raises", run = function(ctx)
          local broken = nil
          return {x = broken.field}
        end}
        """.write(toFile: dir + "/tmp_raise.lua", atomically: true, encoding: .utf8)
        try """
        return {name = "tmp_garbage", doc = "returns garbage",
          run = function(ctx)
            return {x = {1, "two", 3}}
          end}
        """.write(toFile: dir + "/tmp_garbage.lua", atomically: true, encoding: .utf8)
    }

    func environment(pluginDir: String) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["DBM_LUA_PATH"] = pluginDir
        env["DBM_PROGRESS"] = "plain"
        return env
    }

    @Test("runner, recorder, run directory, plots and progress from Lua (temporary plugins, python reads every file); runs killed or stopped and resumed leave the directory of the run that never stopped")
    func luaScript() throws {
        let state = try LuaState()
        let err = state.runFile(luaTestFolder + "/recorder.lua")
        #expect(err == nil, "recorder.lua: \(err ?? "")")
    }

    @Test("dbm.write_summary writes summary.md from data: title, settings, configuration as arguments, figures, notes, sections, files; bad reports name the field")
    func summaryHelper() throws {
        let state = try LuaState()
        let err = state.runFile(luaTestFolder + "/summaries.lua")
        #expect(err == nil, "summaries.lua: \(err ?? "")")
    }

    @Test("a plugin file dropped into $DBM_LUA_PATH is recorded with no rebuild; failing plugins reported once with file and line")
    func pluginOnSearchPath() throws {
        let dir = try tempDir(), plugins = dir + "/plugins", run = dir + "/run"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try writePlugins(plugins)
        let script = dir + "/exp.lua"
        try """
        local cfg = dbm.config({steps = 30, out_dir = "", seed = 4})
        dbm.seed(cfg.seed)
        local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg}
        local W = dbm.randn(50, 20, {dtype = "float64"})
        rec:watch("W", function() return W end, {diagnostics = {"tmp_scalar", "tmp_raise", "tmp_garbage"}, every = 3})
        for step = 0, cfg.steps do
          W = W + dbm.randn(50, 20, {dtype = "float64", std = 0.02})
          rec:step(step, {loss = 1 / (step + 1)})
        end
        print("closed " .. rec:close())
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runProcess(try dbmLuaBinary(), [script, "--out_dir=" + run], environment: environment(pluginDir: plugins))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("closed " + run))
        let raised = r.stderr.components(separatedBy: "diagnostic 'tmp_raise' failed at \(plugins)/tmp_raise.lua:3:").count - 1
        let garbage = r.stderr.components(separatedBy: "diagnostic 'tmp_garbage' (\(plugins)/tmp_garbage.lua:2").count - 1
        #expect(raised == 1 && garbage == 1, "each failing plugin reported once, with file and line:\n\(r.stderr)")
        #expect(r.stderr.contains("returned garbage: field 'x' is an array with a string at index 2"), "\(r.stderr)")
        let summary = try validate(run)
        #expect(summary["metrics"] as? Int == 31 && summary["observables"] as? Int == 11, "\(summary)")
        #expect((summary["spectra"] as? [String: [Int]])?["W"] == [11, 20], "\(summary)")
        let obs = try String(contentsOfFile: run + "/observables.jsonl", encoding: .utf8)
        #expect(obs.hasPrefix("{\"step\":0,\"matrix\":\"W\",\"diagnostic\":\"tmp_scalar\",\"tmp_count\":20,\"tmp_top\":"), "\(obs.prefix(200))")
        #expect(FileManager.default.fileExists(atPath: run + "/DONE"))
        if RecorderTests.haveGnuplot {
            for base in ["W_density", "W_flow", "metrics"] {   // no W_spacing: W does not watch the spacing plugin
                for ext in ["png", "svg"] {
                    #expect(FileManager.default.fileExists(atPath: "\(run)/plots/\(base).\(ext)"), "plots/\(base).\(ext)")
                }
            }
        }
    }

    /// A script that records a small matrix at every step, forever.
    func writeEndlessRun(_ dir: String) throws -> String {
        let script = dir + "/endless.lua"
        try """
        local cfg = dbm.config({out_dir = ""})
        local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg}
        local W = dbm.randn(48, 24, {dtype = "float64"})
        rec:watch("W", function() return W end, {diagnostics = {"tmp_scalar"}, every = 1})
        local H = dbm.zeros(16, 16, {dtype = "float64"})
        rec:watch("H", function() return H end, {diagnostics = {"tmp_scalar"}, every = 2, symmetric = true})
        local step = 0
        while true do
          W = W + dbm.randn(48, 24, {dtype = "float64", std = 0.01})
          local G = dbm.randn(16, 16, {dtype = "float64"}); H = H + (G + G:t()) * 0.05
          rec:step(step, {loss = 1 / (step + 1)})
          step = step + 1
        end
        """.write(toFile: script, atomically: true, encoding: .utf8)
        return script
    }

    /// Starts the endless run and waits until observables.jsonl has `lines` lines (at most 60 s).
    func startEndlessRun(_ dir: String, until lines: Int) throws -> (Process, Pipe) {
        let plugins = dir + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try writePlugins(plugins)
        let script = try writeEndlessRun(dir)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try dbmLuaBinary())
        p.arguments = [script, "--out_dir=" + dir + "/run"]
        p.environment = environment(pluginDir: plugins)
        let errPipe = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = errPipe
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && p.isRunning {
            let text = (try? String(contentsOfFile: dir + "/run/observables.jsonl", encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= lines { break }
            usleep(50_000)
        }
        return (p, errPipe)
    }

    @Test("a second run on a directory in use is refused within a second, naming the holder; the first run's files stay intact")
    func directoryInUse() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, _) = try startEndlessRun(dir, until: 40)
        #expect(p.isRunning, "the run ended by itself")
        let script = dir + "/endless.lua"
        let t0 = Date()
        let second = try runProcess(try dbmLuaBinary(), [script, "--out_dir=" + dir + "/run"],
                                    environment: environment(pluginDir: dir + "/plugins"))
        let seconds = Date().timeIntervalSince(t0)
        #expect(second.status == 1 && second.stderr.contains("is in use") && second.stderr.contains("process \(p.processIdentifier)"),
                "\(second.stderr)")
        // Refused at once, not after waiting for the lock (the first run never ends): 0.03–0.11 s measured;
        // the bound leaves room for a loaded CI machine.
        #expect(seconds < 10, "refused after \(seconds) s")
        // The first run goes on recording, unharmed: its files are whole when it is stopped.
        let before = ((try? String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8)) ?? "").count
        usleep(300_000)
        let after = ((try? String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8)) ?? "").count
        #expect(after > before, "the first run stopped recording")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let summary = try validate(dir + "/run")
        #expect((summary["steps"] as? Int ?? 0) >= 20, "\(summary)")
        print("directory in use: the second run refused in \(String(format: "%.3f", seconds)) s; the first: \(summary)")
        // With the holder gone, the directory can be taken again (resumed here).
        let third = try runProcess(try dbmLuaBinary(), ["-e", "local r = dbm.recorder{out_dir = '\(dir)/run', resume = 5}; r:close()"],
                                   environment: environment(pluginDir: dir + "/plugins"))
        #expect(third.status == 0, "\(third.stderr)")
    }

    @Test("a run killed with SIGKILL mid-way leaves every file valid up to its last record")
    func killedRun() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, _) = try startEndlessRun(dir, until: 150)
        #expect(p.isRunning, "the run ended by itself")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        let summary = try validate(dir + "/run")
        let steps = summary["steps"] as? Int ?? 0
        print("killed run: \(summary)")
        #expect(steps >= 50 && (summary["metrics"] as? Int ?? 0) >= steps, "\(summary)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/DONE"), "no DONE after a kill")
    }

    @Test("a run killed with SIGKILL resumes with --resume=S: steps < S kept once, steps ≥ S recorded again once, DONE")
    func killedRunResumed() throws {
        let dir = try tempDir(), run = dir + "/run"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, _) = try startEndlessRun(dir, until: 150)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let killedAt = try validate(run)["steps"] as? Int ?? 0
        #expect(killedAt >= 50, "the killed run recorded \(killedAt) steps")
        // The endless run's matrices, resumed at step 20 and run to step 29.
        let script = dir + "/resumed.lua"
        try """
        local cfg = dbm.config({out_dir = "", resume = 0})
        local rec = dbm.recorder{out_dir = cfg.out_dir, resume = cfg.resume}
        local W = dbm.randn(48, 24, {dtype = "float64"})
        rec:watch("W", function() return W end, {diagnostics = {"tmp_scalar"}, every = 1})
        local H = dbm.zeros(16, 16, {dtype = "float64"})
        rec:watch("H", function() return H end, {diagnostics = {"tmp_scalar"}, every = 2, symmetric = true})
        for step = cfg.resume, cfg.resume + 9 do rec:step(step, {loss = 1 / (step + 1)}) end
        rec:close()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runProcess(try dbmLuaBinary(), [script, "--out_dir=" + run, "--resume=20"],
                               environment: environment(pluginDir: dir + "/plugins"))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let summary = try validate(run)
        #expect(summary["metrics"] as? Int == 30 && summary["steps"] as? Int == 30 && summary["last_step"] as? Int == 29, "\(summary)")
        let spectra = summary["spectra"] as? [String: [Int]] ?? [:]
        #expect(spectra["W"] == [30, 24] && spectra["H"] == [15, 16], "\(summary)")
        let check = try runProcess("/usr/bin/env", ["python3", "-c", """
        import json, sys, numpy as np
        d = sys.argv[1]
        m = [json.loads(l) for l in open(d + "/metrics.jsonl")]
        assert [o["step"] for o in m] == list(range(30)), [o["step"] for o in m]
        assert all(b["time"] >= a["time"] for a, b in zip(m, m[1:])), "time goes back"
        o = [json.loads(l) for l in open(d + "/observables.jsonl")]
        assert [x["step"] for x in o if x["matrix"] == "W"] == list(range(30))
        assert [x["step"] for x in o if x["matrix"] == "H"] == list(range(0, 30, 2))
        assert list(np.load(d + "/spectra/steps.npy")) == list(range(30))
        assert list(np.load(d + "/spectra/H.steps.npy")) == list(range(0, 30, 2))
        cfg = json.load(open(d + "/config.json"))
        assert [(e["step"], e["args"]) for e in cfg["resumed"]] == [(20, ["--out_dir=" + d, "--resume=20"])], cfg["resumed"]
        """, run])
        #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
        #expect(FileManager.default.fileExists(atPath: run + "/DONE"))
    }

    @Test("dbm.npy_appender from Lua: numpy reads appended files (and ignores rows past the header's count), cuts, replaces; unknown options named")
    func npyAppenderScript() throws {
        let state = try LuaState()
        let err = state.runFile(luaTestFolder + "/npy_appender.lua")
        #expect(err == nil, "npy_appender.lua: \(err ?? "")")
    }

    /// Records one 64×64 matrix at every step (and an 8×8 one every 3 steps, with its own steps file),
    /// resumed at --resume=S when S ≥ 0, up to --steps; prints "recording" once the matrices are watched.
    func writeKillableRun(_ dir: String) throws -> String {
        let script = dir + "/killable.lua"
        try """
        local cfg = dbm.config({out_dir = "", resume = -1, steps = 1000000})
        local rec = dbm.recorder{out_dir = cfg.out_dir, config = cfg, resume = cfg.resume >= 0 and cfg.resume or nil,
                                 plots = false, report = function() end}
        local W = dbm.randn(64, 64, {dtype = "float64", generator = dbm.generator(1)})
        rec:watch("W", W, {every = 1})
        local H = dbm.randn(8, 8, {dtype = "float64", generator = dbm.generator(2)})
        rec:watch("H", H + H:t(), {every = 3, symmetric = true})
        print("recording")
        io.stdout:flush()
        for step = math.max(cfg.resume, 0), cfg.steps - 1 do
          rec:step(step, {loss = 1 / (step + 1)})
          if step == math.max(cfg.resume, 0) then print("recorded"); io.stdout:flush() end
        end
        rec:close()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        return script
    }

    /// The rows of each spectra/*.npy and of the steps file it goes with (its own, else steps.npy), read
    /// with Npy.read; a missing file (nothing recorded yet) is left out.
    func spectraRows(_ run: String) throws -> [String: (rows: Int, steps: Int)] {
        let sp = run + "/spectra"
        let union = try Npy.read(path: sp + "/steps.npy").count
        var out: [String: (rows: Int, steps: Int)] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: sp).sorted()
        where f.hasSuffix(".npy") && f != "steps.npy" && !f.hasSuffix(".steps.npy") && !f.hasPrefix(".") {
            let name = String(f.dropLast(4))
            let own = sp + "/" + name + ".steps.npy"
            let steps = FileManager.default.fileExists(atPath: own) ? try Npy.read(path: own).count : union
            out[name] = (try Npy.read(path: sp + "/" + f).shape[0], steps)
        }
        return out
    }

    @Test("SIGKILL at 20 random moments of runs recording every step (fresh and resumed), and between a row write and its header update: numpy loads every spectra file, with as many rows as its steps or one more")
    func killedAtRandomMoments() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = try writeKillableRun(dir)
        let binary = try dbmLuaBinary()
        let fm = FileManager.default
        var snapshots = 0
        /// Copies the run's spectra/ for the numpy check at the end (one python for all of them).
        func snapshot(_ run: String) throws {
            let to = "\(dir)/snapshots/\(snapshots)"
            try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
            try fm.copyItem(atPath: run + "/spectra", toPath: to + "/spectra")
            snapshots += 1
        }
        /// Starts the run; once it prints `mark` ("recording" before its first record, "recorded" after
        /// it), waits `delay` seconds (nil: until the child kills itself) and kills it with SIGKILL;
        /// returns how it ended.
        func killedRun(_ run: String, resume: Int? = nil, delay: Double?, after mark: String = "recording",
                       hook: String? = nil) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [script, "--out_dir=" + run] + (resume.map { ["--resume=\($0)"] } ?? [])
            var env = ProcessInfo.processInfo.environment
            env[NpyAppender.killHook] = hook
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            var text = ""
            let deadline = Date().addingTimeInterval(60)
            while !text.contains(mark + "\n") && Date() < deadline {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }   // the child ended
                text += String(decoding: d, as: UTF8.self)
            }
            if let delay {
                #expect(text.contains(mark), "the run did not reach '\(mark)': \(text)")
                usleep(UInt32(delay * 1e6))
                kill(p.processIdentifier, SIGKILL)
            }
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL, "the run ended otherwise: \(p.terminationStatus)")
            return p
        }
        func checkInvariant(_ run: String, _ label: String) throws {
            for (name, c) in try spectraRows(run) {
                #expect(c.rows == c.steps || c.rows == c.steps + 1, "\(label): spectra/\(name).npy has \(c.rows) rows for \(c.steps) steps")
            }
        }

        // 20 kills at random moments: a fresh run every 4 rounds, resumed in between (two steps back).
        // Odd rounds count the moment from the run's first record, so that most kills land after some
        // records however slowly the run starts on a loaded machine (0.3 s from the start alone gave 7
        // of 20 under a load of 10 on 2 cores).
        let g = Generator(seed: 20261202)
        var run = "", recorded: [Int] = []
        for round in 0..<20 {
            var resume: Int? = nil
            if round % 4 == 0 {
                run = "\(dir)/run\(round / 4)"
            } else {
                resume = max(0, try Npy.read(path: run + "/spectra/steps.npy").count - 2)
            }
            _ = try killedRun(run, resume: resume, delay: 0.3 * g.uniform(), after: round % 2 == 1 ? "recorded" : "recording")
            try checkInvariant(run, "round \(round)")
            recorded.append(try Npy.read(path: run + "/spectra/steps.npy").count)
            try snapshot(run)
        }
        print("killed at random moments: steps recorded at each kill \(recorded)")
        #expect(recorded.filter { $0 > 0 }.count >= 10, "most kills land after some records: \(recorded)")

        // Killed by the test hook between W.npy's 25th append (step 25) and its header update: the header
        // counts 25 rows, one row's bytes follow; steps.npy has the 25 steps 0...24.
        let rowBytes = 64 * 8, header = Npy.growableHeaderBytes(descr: "<f8", shape: [0, 64]).count
        let a = dir + "/hookW"
        _ = try killedRun(a, delay: nil, hook: "/W.npy:25")
        let wSize = (try fm.attributesOfItem(atPath: a + "/spectra/W.npy")[.size] as? Int) ?? 0
        #expect(try Npy.read(path: a + "/spectra/W.npy").shape == [25, 64] && wSize == header + 26 * rowBytes,
                "W.npy: a row past the header's 25 (\(wSize) bytes)")
        #expect(try Npy.read(path: a + "/spectra/steps.npy").toDoubles() == (0..<25).map(Double.init))
        try checkInvariant(a, "killed between W.npy's row and header")
        try snapshot(a)
        // ... and between steps.npy's 25th append (step 24) and its header update: 24 steps, 25 rows.
        let b = dir + "/hookSteps"
        _ = try killedRun(b, delay: nil, hook: "/steps.npy:25")
        let sSize = (try fm.attributesOfItem(atPath: b + "/spectra/steps.npy")[.size] as? Int) ?? 0
        #expect(try Npy.read(path: b + "/spectra/steps.npy").count == 24 && sSize == header + 25 * 8, "steps.npy: \(sSize) bytes")
        #expect(try Npy.read(path: b + "/spectra/W.npy").shape == [25, 64])
        try checkInvariant(b, "killed between steps.npy's step and header")
        try snapshot(b)

        // numpy reads every snapshot: each spectra file loads, with as many rows as its steps or one more.
        let check = try runProcess("/usr/bin/env", ["python3", "-c", """
        import os, sys, numpy as np
        root = sys.argv[1]
        extra = 0
        for snap in sorted(os.listdir(root), key=int):
            sp = os.path.join(root, snap, "spectra")
            steps = np.load(os.path.join(sp, "steps.npy"))
            assert steps.dtype == np.int64 and steps.ndim == 1 and list(steps) == list(range(len(steps))), (snap, steps)
            for f in sorted(os.listdir(sp)):
                if not f.endswith(".npy") or f == "steps.npy" or f.endswith(".steps.npy") or f.startswith("."):
                    continue
                a = np.load(os.path.join(sp, f))
                own = os.path.join(sp, f[:-4] + ".steps.npy")
                st = np.load(own) if os.path.exists(own) else steps
                assert a.dtype == np.float64 and a.ndim == 2 and a.shape[1] in (64, 8), (snap, f, a.shape)
                assert a.shape[0] in (len(st), len(st) + 1), (snap, f, a.shape, len(st))
                assert np.all(np.diff(a, axis=1) >= 0), (snap, f, "levels not ascending")
                extra += a.shape[0] == len(st) + 1
        print("numpy: %d snapshots valid; %d spectra files one row ahead of their steps" % (len(os.listdir(root)), extra))
        """, dir + "/snapshots"])
        #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
        print(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        // The run killed between steps.npy's data and header resumes (at 20) and completes: files exact.
        let r = try runProcess(binary, [script, "--out_dir=" + b, "--resume=20", "--steps=40"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let rows = try spectraRows(b)
        #expect(rows["W"]?.rows == 40 && rows["W"]?.steps == 40 && rows["H"]?.rows == 14 && rows["H"]?.steps == 14, "\(rows)")
        let sizes = ["W.npy": header + 40 * rowBytes, "steps.npy": header + 40 * 8]
        for (f, size) in sizes {
            #expect((try fm.attributesOfItem(atPath: b + "/spectra/" + f)[.size] as? Int) == size, "\(f): no bytes past its rows")
        }
        #expect(try Npy.read(path: b + "/spectra/H.steps.npy").toDoubles() == stride(from: 0, to: 40, by: 3).map(Double.init))
        #expect(fm.fileExists(atPath: b + "/DONE"))
        _ = try validate(b)
    }

    @Test("Ctrl-C ends a run cleanly: files complete, plots written, no DONE")
    func interruptedRun() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, errPipe) = try startEndlessRun(dir, until: 60)
        #expect(p.isRunning, "the run ended by itself")
        kill(p.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 130 && err.contains("interrupted (Ctrl-C) at "), "\(err)")
        #expect(err.contains("closed without DONE"), "\(err)")
        let summary = try validate(dir + "/run")
        let spectra = summary["spectra"] as? [String: [Int]] ?? [:]
        #expect(spectra["W"]?[0] == summary["steps"] as? Int, "after Ctrl-C the spectra and steps agree exactly: \(summary)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/DONE"))
        if RecorderTests.haveGnuplot {
            for base in ["W_density", "W_flow", "H_density", "H_flow", "metrics"] {   // W_spacing only where spacing is watched
                for ext in ["png", "svg"] {
                    #expect(FileManager.default.fileExists(atPath: "\(dir)/run/plots/\(base).\(ext)"), "plots/\(base).\(ext)")
                }
            }
        }
    }

    @Test("experiments/matrix_brownian.lua runs in seconds: GOE-like spacings, plots, progress")
    func matrixBrownianDemo() throws {
        guard let root = LuaState.projectRoot else { Issue.record("project root not found"); return }
        let dir = try tempDir(), run = dir + "/run"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let start = Date()
        var env = ProcessInfo.processInfo.environment
        env["DBM_PROGRESS"] = "plain"
        let r = try runProcess(try dbmLuaBinary(), [root + "/experiments/matrix_brownian.lua", "--out_dir=" + run], environment: env)
        let seconds = Date().timeIntervalSince(start)
        print("matrix_brownian.lua: \(String(format: "%.1f", seconds)) s; \(r.stdout.split(separator: "\n").last ?? "")")
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(seconds < 60)
        #expect(r.stdout.contains("400/400") && r.stdout.contains("run directory: " + run), "\(r.stdout)")
        let summary = try validate(run)
        #expect((summary["spectra"] as? [String: [Int]])?["H"] == [101, 60], "\(summary)")
        // ⟨r⟩ over the second half of the records: levels that repel (GOE 0.5307), not Poisson (0.386).
        let obs = try String(contentsOfFile: run + "/observables.jsonl", encoding: .utf8)
        let rs = obs.split(separator: "\n").compactMap { line -> (Int, Double)? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let r = o["r_mean"] as? Double, let s = o["step"] as? Int else { return nil }
            return (s, r)
        }.filter { $0.0 >= 200 }.map(\.1)
        let mean = rs.reduce(0, +) / Double(max(rs.count, 1))
        print("matrix_brownian.lua: <r> = \(String(format: "%.4f", mean)) over \(rs.count) records (GOE 0.5307, Poisson 0.386)")
        #expect(rs.count == 51 && abs(mean - 0.5307) < 0.05, "<r> = \(mean)")
        if RecorderTests.haveGnuplot {
            for base in ["H_density", "H_spacing", "H_flow", "H_observables", "metrics"] {
                #expect(FileManager.default.fileExists(atPath: "\(run)/plots/\(base).png"), "plots/\(base).png")
            }
        }
    }
}
