import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `dbm-lua sweep`: a grid of independent runs of one script, N at a time on this machine, or as a
/// Slurm job array; resumable (a point whose DONE exists never runs again) and safe when several
/// sweeps share the directory (a non-blocking flock per point).
///
/// Layout of a sweep directory:
///   sweep.json               the manifest: script, binary, cwd, grid, sets, types, the ordered points
///   sweep.sbatch             the Slurm batch script (--slurm)
///   <point>/                 the point's run directory (its out_dir): the script's files, DONE last
///   <point>/sweep.log        stdout and stderr of every attempt, each after a header line
///   <point>/sweep.lock       flock'ed while the point runs (held by the script process itself)
///   <point>/sweep-status.json  the last attempt: status (done | failed), exit code or signal, seconds
/// A point's directory is named from its parameters in grid order, `lr=0.1,batch_size=8,seed=1`
/// (characters other than letters, digits and `._=,+-` become `_`); when such names would collide or
/// exceed 200 bytes, every point is named by its index instead, `point-00000`.
/// The default sweep directory is `runs/sweep-<script>-<hash of script, grid and sets>`, so running
/// the same command again resumes the same sweep.
public enum Sweep {
    static let usage = """
    usage: dbm-lua sweep SCRIPT --grid key=v1,v2,... [--grid key=A-B ...] [--set key=value ...]
                         [--jobs N] [--out_dir DIR] [--slurm [--partition P] [--time T]
                         [--cpus-per-task C] [--array-chunk K] [--submit]]
           dbm-lua sweep --resume DIR [--jobs N]
           dbm-lua sweep --point I DIR
           dbm-lua sweep collect DIR [--plot COLUMN --x param.KEY ...]
    Runs `dbm-lua SCRIPT --key=value ... --out_dir=DIR/<point>` for every point of the product of the
    grids, N at a time (default: the number of cores; with N > 1 each point gets OPENBLAS_NUM_THREADS=1).
    Grid keys are config keys of the script (its dbm.config defaults); `A-B` is an integer range.
    Running the same command again (or --resume DIR) skips the points whose DONE exists and reruns the
    rest; a failed point is recorded (DIR/<point>/sweep.log, sweep-status.json) and the sweep goes on;
    the exit status is 1 if any point failed. --slurm writes DIR/sweep.sbatch, a job array with one
    task per point (or per K points), each running `dbm-lua sweep --point I DIR`; --submit runs sbatch.
    `collect` writes DIR/results.jsonl and DIR/results.csv from the finished points.
    """

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ s: String) { description = s } }

    struct GridAxis { var key: String; var values: [String] }

    struct Manifest {
        var script: String
        var binary: String
        var cwd: String
        var grid: [GridAxis]
        var sets: [(key: String, value: String)]
        var types: [String: String]
        var points: [(index: Int, params: [String: String], dir: String)]

        var json: [String: Any] {
            [
                "script": script, "binary": binary, "cwd": cwd,
                "grid": grid.map { ["key": $0.key, "values": $0.values] as [String: Any] },
                "sets": sets.map { ["key": $0.key, "value": $0.value] },
                "types": types,
                "points": points.map { ["index": $0.index, "params": $0.params, "dir": $0.dir] as [String: Any] },
            ]
        }

        init(script: String, binary: String, cwd: String, grid: [GridAxis], sets: [(key: String, value: String)],
             types: [String: String], points: [(index: Int, params: [String: String], dir: String)]) {
            self.script = script; self.binary = binary; self.cwd = cwd; self.grid = grid; self.sets = sets
            self.types = types; self.points = points
        }

        init(contentsOf path: String) throws {
            guard let data = FileManager.default.contents(atPath: path),
                  let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let script = o["script"] as? String, let binary = o["binary"] as? String,
                  let grid = o["grid"] as? [[String: Any]], let points = o["points"] as? [[String: Any]] else {
                throw Failure("cannot read the sweep manifest \(path)")
            }
            self.script = script; self.binary = binary; self.cwd = o["cwd"] as? String ?? FileManager.default.currentDirectoryPath
            self.grid = grid.map { GridAxis(key: $0["key"] as? String ?? "", values: $0["values"] as? [String] ?? []) }
            self.sets = (o["sets"] as? [[String: String]] ?? []).map { (key: $0["key"] ?? "", value: $0["value"] ?? "") }
            self.types = o["types"] as? [String: String] ?? [:]
            self.points = points.map { (index: ($0["index"] as? Int) ?? 0, params: $0["params"] as? [String: String] ?? [:],
                                        dir: $0["dir"] as? String ?? "") }
        }

        /// What makes two sweeps the same sweep (the points follow from it).
        var identity: String {
            script + "\n" + grid.map { $0.key + "=" + $0.values.joined(separator: ",") }.joined(separator: "\n")
                + "\n--\n" + sets.map { $0.key + "=" + $0.value }.joined(separator: "\n")
        }

        func arguments(point i: Int, sweepDir: String) -> [String] {
            let p = points[i]
            var args = [script]
            for s in sets { args.append("--\(s.key)=\(s.value)") }
            for axis in grid { args.append("--\(axis.key)=\(p.params[axis.key] ?? "")") }
            args.append("--out_dir=\(sweepDir)/\(p.dir)")
            return args
        }
    }

    // ---------------------------------------------------------------- command line

    public static func main(_ args: [String]) -> Int32 {
        do { return try run(args) } catch {
            FileHandle.standardError.write(Data("dbm-lua sweep: \(error)\n".utf8))
            return 2
        }
    }

    /// The sweep's command line.
    struct Arguments {
        var grids: [String] = [], sets: [String] = []
        var jobs: Int? = nil, outDir: String? = nil, resume: String? = nil, point: (Int, String)? = nil
        var script: String? = nil
        var slurm = false, submit = false, help = false
        var slurmOptions: [String: String] = [:]
    }

    static func parse(_ args: [String]) throws -> Arguments {
        var r = Arguments()
        var i = 0
        func value(_ name: String) throws -> String {
            let a = args[i]
            if a.hasPrefix(name + "=") { i += 1; return String(a.dropFirst(name.count + 1)) }
            guard i + 1 < args.count else { throw Failure("\(name) needs a value\n\(usage)") }
            i += 2; return args[i - 1]
        }
        func isOption(_ name: String) -> Bool { args[i] == name || args[i].hasPrefix(name + "=") }
        while i < args.count {
            let a = args[i]
            if a == "-h" || a == "--help" { r.help = true; return r }
            else if isOption("--grid") { r.grids.append(try value("--grid")) }
            else if isOption("--set") { r.sets.append(try value("--set")) }
            else if isOption("--jobs") {
                let v = try value("--jobs")
                guard let n = Int(v), n >= 1 else { throw Failure("--jobs \(v): expected a positive integer") }
                r.jobs = n
            }
            else if isOption("--out_dir") { r.outDir = try value("--out_dir") }
            else if isOption("--resume") { r.resume = try value("--resume") }
            else if a == "--point" {
                guard i + 2 < args.count, let n = Int(args[i + 1]), n >= 0 else { throw Failure("--point needs an index and a directory: --point I DIR") }
                r.point = (n, args[i + 2]); i += 3
            }
            else if a == "--slurm" { r.slurm = true; i += 1 }
            else if a == "--submit" { r.submit = true; r.slurm = true; i += 1 }
            else if let name = ["--partition", "--time", "--cpus-per-task", "--array-chunk"].first(where: isOption) {
                r.slurmOptions[name] = try value(name)
            }
            else if a.hasPrefix("-") { throw Failure("unrecognized option '\(a)'\n\(usage)") }
            else if r.script == nil { r.script = a; i += 1 }
            else { throw Failure("unexpected argument '\(a)' (one script per sweep)\n\(usage)") }
        }
        return r
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try parse(args)
        if a.help { print(usage); return 0 }
        try checkSlurmOptions(a.slurmOptions)
        let jobs = a.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        if let (index, dir) = a.point {
            let m = try Manifest(contentsOf: dir + "/sweep.json")
            guard index < m.points.count else { throw Failure("--point \(index): the sweep in \(dir) has \(m.points.count) points (0-\(m.points.count - 1))") }
            let r = runPoints(m, sweepDir: absolute(dir), indices: [index], jobs: 1)
            return r.failed > 0 ? 1 : 0
        }
        if let dir = a.resume {
            let m = try Manifest(contentsOf: dir + "/sweep.json")
            return runAndSummarize(m, sweepDir: absolute(dir), jobs: jobs)
        }
        return try start(a, jobs: jobs)
    }

    /// A new sweep (or the same command again: it resumes): everything is checked before anything is
    /// written or run.
    static func start(_ a: Arguments, jobs: Int) throws -> Int32 {
        guard let script = a.script else { throw Failure("no script given\n\(usage)") }
        guard FileManager.default.isReadableFile(atPath: script) else { throw Failure("cannot read the script \(script)") }
        guard !a.grids.isEmpty else { throw Failure("no --grid given (e.g. --grid lr=0.1,0.05)") }
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let scriptPath = absolute(script)
        let given = try parseAxes(grids: a.grids, sets: a.sets)
        let config = try askScript(binary: binary, script: scriptPath, values: candidates(given.grid + given.sets))
        let manifestDraft = try makeManifest(script: scriptPath, binary: binary, given: given, config: config)
        let base = URL(fileURLWithPath: scriptPath).deletingPathExtension().lastPathComponent
        let sweepDir = absolute(a.outDir ?? "runs/sweep-\(base)-\(fnv1a(manifestDraft.identity))")
        if a.slurm {
            try checkBatchScriptPaths(sweepDir: sweepDir, cwd: manifestDraft.cwd, script: manifestDraft.script, binary: binary)
        }
        let manifest = try createOrResume(manifestDraft, sweepDir: sweepDir)
        if a.slurm {
            let path = try writeBatchScript(manifest, sweepDir: sweepDir, options: a.slurmOptions)
            print("sweep: \(manifest.points.count) points; Slurm batch script \(path)")
            if a.submit { return try submitBatch(path) }
            print("submit it with: sbatch \(path)")
            return 0
        }
        return runAndSummarize(manifest, sweepDir: sweepDir, jobs: jobs)
    }

    /// Writes sweepDir/sweep.json, or reads the one there when it is the same sweep.
    static func createOrResume(_ manifest: Manifest, sweepDir: String) throws -> Manifest {
        let manifestPath = sweepDir + "/sweep.json"
        if FileManager.default.fileExists(atPath: manifestPath) {
            let old = try Manifest(contentsOf: manifestPath)
            guard old.identity == manifest.identity else {
                throw Failure("\(sweepDir) holds a different sweep (script, grid or sets differ); choose another --out_dir")
            }
            print("sweep: resuming \(sweepDir)")
            return old
        }
        try FileManager.default.createDirectory(atPath: sweepDir, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: manifest.json, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        return manifest
    }

    static func absolute(_ path: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return String(format: "%08x", UInt32(truncatingIfNeeded: h ^ (h >> 32)))
    }

    // ---------------------------------------------------------------- the grid

    /// A --grid or --set as given: its key, the argument it came from, its items as text (a set has one).
    struct GivenAxis { var key: String; var part: String; var items: [String] }

    /// What the script says of its configuration: the type of each key, and why a value given as text
    /// is not a value of its key (dbm.config's own conversion and the bounds and choices the script
    /// declares), "" when it is.
    struct ScriptConfig {
        var types: [String: String]
        var problems: [String: String]   // "key=text" -> why, or ""
        func problem(_ key: String, _ text: String) -> String? {
            problems[key + "=" + text].flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    /// The grids and sets, checked for what needs no knowledge of the script: key=value shape, out_dir,
    /// empty lists and values, a key given twice.
    static func parseAxes(grids: [String], sets: [String]) throws -> (grid: [GivenAxis], sets: [GivenAxis]) {
        var seen: Set<String> = []
        func split(_ arg: String, _ option: String) throws -> (key: String, rest: String) {
            guard let eq = arg.firstIndex(of: "="), eq != arg.startIndex else {
                throw Failure("\(option) '\(arg)': expected " + (option == "--grid" ? "key=v1,v2,... or key=A-B" : "key=value"))
            }
            let key = String(arg[..<eq])
            guard key != "out_dir" else { throw Failure("'\(option) \(arg)': out_dir is set by the sweep (use --out_dir DIR for the sweep directory)") }
            guard seen.insert(key).inserted else { throw Failure("'\(option) \(arg)': key '\(key)' given twice") }
            return (key, String(arg[arg.index(after: eq)...]))
        }
        var axes: [GivenAxis] = []
        for g in grids {
            let (key, list) = try split(g, "--grid")
            guard !list.isEmpty else { throw Failure("--grid '\(g)': empty list of values for '\(key)'") }
            let items = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !items.contains("") else { throw Failure("--grid '\(g)': empty value in the list") }
            axes.append(GivenAxis(key: key, part: g, items: items))
        }
        let setAxes = try sets.map { s in
            let (key, v) = try split(s, "--set")
            return GivenAxis(key: key, part: s, items: [v])
        }
        return (axes, setAxes)
    }

    /// Every value the script is asked about: each item as written, and the values of an item shaped
    /// as an integer range (which it is when its key is a number).
    static func candidates(_ axes: [GivenAxis]) -> [(key: String, text: String)] {
        var out: [(key: String, text: String)] = [], seen: Set<String> = []
        for axis in axes {
            for item in axis.items {
                let range = (try? parseRange(item, axis.part)) ?? nil
                for text in [item] + (range.map { $0.map(String.init) } ?? []) where seen.insert(axis.key + "=" + text).inserted {
                    out.append((axis.key, text))
                }
            }
        }
        return out
    }

    /// The script's config keys and types, and what it says of `values`, by running `dbm-lua SCRIPT`
    /// with DBM_CONFIG_JSON (and DBM_CONFIG_CHECK, the values) set: dbm.config answers and exits.
    static func askScript(binary: String, script: String, values: [(key: String, text: String)]) throws -> ScriptConfig {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-sweep-config-\(getpid())-\(UUID().uuidString)").path
        defer { unlink(tmp + ".json"); unlink(tmp + ".log"); unlink(tmp + ".check.json") }
        try JSONSerialization.data(withJSONObject: values.map { [$0.key, $0.text] }).write(to: URL(fileURLWithPath: tmp + ".check.json"))
        var env = ProcessInfo.processInfo.environment
        env["DBM_CONFIG_JSON"] = tmp + ".json"
        env["DBM_CONFIG_CHECK"] = tmp + ".check.json"
        let pid = try spawn(binary, [script], environment: env, log: tmp + ".log", closing: [])
        // The script runs up to its dbm.config call, which writes the keys and exits; code before it that
        // never gets there (a loop) is stopped after configKeysTimeLimit seconds.
        guard let status = waitFor(pid, seconds: configKeysTimeLimit) else {
            kill(pid, SIGKILL)
            _ = waitFor(pid)
            throw Failure("cannot get the config keys of \(script): it did not reach dbm.config(defaults) within "
                + "\(Int(configKeysTimeLimit)) s (the sweep runs a script's top-level code up to that call)")
        }
        guard let data = FileManager.default.contents(atPath: tmp + ".json"),
              let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let types = o["types"] as? [String: String] else {
            let log = (try? String(contentsOfFile: tmp + ".log", encoding: .utf8)) ?? ""
            throw Failure("cannot get the config keys of \(script) (it must call dbm.config(defaults) first; \(describe(status))):\n\(log)")
        }
        let answers = o["problems"] as? [String] ?? []
        var problems: [String: String] = [:]
        for (i, v) in values.enumerated() { problems[v.key + "=" + v.text] = i < answers.count ? answers[i] : "" }
        return ScriptConfig(types: types, problems: problems)
    }

    /// The values of one given axis, as the script reads them: an integer range `A-B` of a number key
    /// expanded; every value one the script accepts for its key.
    static func values(of axis: GivenAxis, option: String, _ config: ScriptConfig) throws -> [String] {
        let types = config.types
        guard let type = types[axis.key] else {
            let known = types.keys.sorted().map { "\($0) (\(types[$0]!))" }.joined(separator: ", ")
            throw Failure("'\(option) \(axis.part)': unknown key '\(axis.key)' (the script's keys: \(known))")
        }
        var values: [String] = []
        for item in axis.items {
            var range: ClosedRange<Int>? = nil
            if type == "integer" || type == "float" { range = try parseRange(item, axis.part) }
            for text in range.map({ $0.map(String.init) }) ?? [item] {
                if let why = config.problem(axis.key, text) { throw Failure("\(option) '\(axis.part)': \(why)") }
                values.append(text)
            }
        }
        guard Set(values).count == values.count else { throw Failure("\(option) '\(axis.part)': a value appears twice") }
        return values
    }

    static func makeManifest(script: String, binary: String, given: (grid: [GivenAxis], sets: [GivenAxis]),
                             config: ScriptConfig) throws -> Manifest {
        let axes = try given.grid.map { GridAxis(key: $0.key, values: try values(of: $0, option: "--grid", config)) }
        let setPairs = try given.sets.map { (key: $0.key, value: try values(of: $0, option: "--set", config)[0]) }
        // The product, the last grid varying fastest.
        var combos: [[String: String]] = [[:]]
        for axis in axes {
            combos = combos.flatMap { c in axis.values.map { v in var n = c; n[axis.key] = v; return n } }
            guard combos.count <= 1_000_000 else { throw Failure("the grid has more than 1,000,000 points") }
        }
        func readable(_ p: [String: String]) -> String {
            let name = axes.map { "\($0.key)=\(p[$0.key]!)" }.joined(separator: ",")
            return String(name.unicodeScalars.map { c -> Character in
                let ok = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "._=,+-".unicodeScalars.contains(c)
                return ok ? Character(c) : "_"
            })
        }
        var names = combos.map(readable)
        if Set(names).count != names.count || names.contains(where: { $0.utf8.count > 200 }) {
            names = combos.indices.map { String(format: "point-%05d", $0) }
        }
        let points = combos.enumerated().map { (index: $0.offset, params: $0.element, dir: names[$0.offset]) }
        return Manifest(script: script, binary: binary, cwd: FileManager.default.currentDirectoryPath,
                        grid: axes, sets: setPairs, types: config.types, points: points)
    }

    /// An integer range `A-B` (A ≤ B) as its values; nil when the item is not range-shaped
    /// (a plain number such as -3 or 1e-3); an error when it is range-shaped but malformed.
    static func parseRange(_ item: String, _ part: String) throws -> ClosedRange<Int>? {
        var s = Substring(item)
        var start = ""
        if s.first == "-" { start = "-"; s = s.dropFirst() }
        let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, s.dropFirst(digits.count).first == "-" else { return nil }
        let rest = s.dropFirst(digits.count + 1)
        guard let a = Int(start + digits), let b = Int(rest), a <= b else {
            throw Failure("--grid '\(part)': malformed range '\(item)' (A-B needs integers A <= B)")
        }
        let (length, overflow) = b.subtractingReportingOverflow(a)
        guard !overflow, length < 1_000_000 else { throw Failure("--grid '\(part)': range '\(item)' is too long") }
        return a...b
    }

    // ---------------------------------------------------------------- running points

    struct Tally { var ran = 0, alreadyDone = 0, failed = 0, locked = 0; var failures: [String] = [] }

    static func runAndSummarize(_ m: Manifest, sweepDir: String, jobs: Int) -> Int32 {
        let t0 = Date()
        let r = runPoints(m, sweepDir: sweepDir, indices: Array(m.points.indices), jobs: jobs)
        for f in r.failures { print("sweep: failed: \(f)") }
        print(String(format: "sweep: %d points in %@: %d ran ok, %d already done, %d failed, %d locked by another process (%.1f s)",
                     m.points.count, sweepDir, r.ran, r.alreadyDone, r.failed, r.locked, Date().timeIntervalSince(t0)))
        return r.failed > 0 ? 1 : 0
    }

    /// Runs the points not yet done, `jobs` at a time. Each point: skip if DONE; take its flock
    /// (non-blocking; held by another process: skip); check DONE again; run; record the status.
    static func runPoints(_ m: Manifest, sweepDir: String, indices: [Int], jobs: Int) -> Tally {
        var tally = Tally()
        var env = ProcessInfo.processInfo.environment
        env["DBM_CONFIG_JSON"] = nil
        env["DBM_CONFIG_CHECK"] = nil
        if jobs > 1 { env["OPENBLAS_NUM_THREADS"] = "1" }
        var running: [pid_t: (index: Int, lock: Int32, start: Date)] = [:]
        var pending = indices[...]
        let fm = FileManager.default
        func dir(_ i: Int) -> String { sweepDir + "/" + m.points[i].dir }
        while true {
            while running.count < jobs, let i = pending.popFirst() {
                let d = dir(i)
                if fm.fileExists(atPath: d + "/DONE") { tally.alreadyDone += 1; continue }
                try? fm.createDirectory(atPath: d, withIntermediateDirectories: true)
                // No O_CLOEXEC: the script process inherits the lock, so it stays held while the
                // script runs even if this sweep process dies.
                let fd = open(d + "/sweep.lock", O_RDWR | O_CREAT, 0o644)
                guard fd >= 0 else {
                    tally.failed += 1; tally.failures.append("\(m.points[i].dir): cannot open its lock file"); continue
                }
                if flock(fd, LOCK_EX | LOCK_NB) != 0 { close(fd); tally.locked += 1; continue }
                if fm.fileExists(atPath: d + "/DONE") { close(fd); tally.alreadyDone += 1; continue }
                let log = d + "/sweep.log"
                appendLine(log, "==== sweep: point \(i) started \(timestamp()) on \(hostname()) (pid \(getpid())): \(m.arguments(point: i, sweepDir: sweepDir).joined(separator: " "))")
                do {
                    let others = running.values.map(\.lock)
                    let pid = try spawn(m.binary, m.arguments(point: i, sweepDir: sweepDir), environment: env, log: log, closing: others)
                    running[pid] = (i, fd, Date())
                } catch {
                    close(fd)
                    tally.failed += 1; tally.failures.append("\(m.points[i].dir): \(error)")
                }
            }
            if running.isEmpty { break }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 { if errno == EINTR { continue }; break }
            guard let r = running.removeValue(forKey: pid) else { continue }
            finish(m, point: r.index, status: status, seconds: Date().timeIntervalSince(r.start), sweepDir: sweepDir, tally: &tally)
            close(r.lock)
        }
        return tally
    }

    /// After a point's process ended: DONE for a script without a recorder that exited 0, the point's
    /// sweep-status.json, and the tally and the printed line.
    static func finish(_ m: Manifest, point i: Int, status: Int32, seconds: Double, sweepDir: String, tally: inout Tally) {
        let d = sweepDir + "/" + m.points[i].dir
        let ok = exitCode(status) == 0
        if ok && !FileManager.default.fileExists(atPath: d + "/DONE") {
            // A script without a recorder: its exit status is the only sign it completed.
            try? (timestamp() + "\n").write(toFile: d + "/DONE", atomically: true, encoding: .utf8)
        }
        var record: [String: Any] = ["index": i, "status": ok ? "done" : "failed", "seconds": seconds,
                                     "log": "sweep.log", "host": hostname(), "finished": timestamp()]
        if let c = exitCode(status) { record["exit_code"] = Int(c) } else { record["signal"] = Int(status & 0x7f) }
        if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
            try? data.write(to: URL(fileURLWithPath: d + "/sweep-status.json"), options: .atomic)
        }
        let name = m.points[i].dir
        if ok {
            tally.ran += 1
            print(String(format: "sweep: point %d %@ done (%.2f s)", i, name, seconds))
        } else {
            tally.failed += 1
            tally.failures.append("point \(i) \(name) (\(describe(status))): see \(d)/sweep.log")
            print("sweep: point \(i) \(name) FAILED (\(describe(status))): see \(d)/sweep.log")
        }
    }

    static func exitCode(_ status: Int32) -> Int32? { (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil }
    static func describe(_ status: Int32) -> String {
        if let c = exitCode(status) { return "exit status \(c)" }
        return "killed by signal \(status & 0x7f)"
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date())
    }

    static func hostname() -> String {
        ProcessInfo.processInfo.hostName
    }

    static func appendLine(_ path: String, _ line: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let text = line + "\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Starts `path args` with stdin from /dev/null, stdout and stderr appended to `log`, and the
    /// descriptors `closing` closed in the child. posix_spawn (not Foundation's Process) so that the
    /// child keeps its own point's lock and the parent can wait with waitpid.
    static func spawn(_ path: String, _ args: [String], environment: [String: String], log: String, closing: [Int32]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for fd in closing { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard rc == 0 else { throw Failure("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    static func waitFor(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// How long the sweep lets a script run to reach its dbm.config call (DBM_SWEEP_CONFIG_SECONDS overrides).
    static var configKeysTimeLimit: Double {
        ProcessInfo.processInfo.environment["DBM_SWEEP_CONFIG_SECONDS"].flatMap(Double.init).map { max(0.1, $0) } ?? 60
    }

    /// The exit status of pid, or nil when it is still running after `seconds`.
    static func waitFor(_ pid: pid_t, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r < 0 && errno != EINTR { return status }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    // ---------------------------------------------------------------- Slurm

    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The values written into sweep.sbatch, in the syntax Slurm accepts for each (sbatch(1)): anything
    /// else, a line break above all, would become a line of the batch script, run by bash.
    static func checkSlurmOptions(_ options: [String: String]) throws {
        let syntax: [(option: String, pattern: String, expected: String)] = [
            ("--partition", "[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*", "partition names of letters, digits, '_', '.', '-', separated by commas"),
            ("--time", "UNLIMITED|INFINITE|([0-9]+-)?[0-9]+(:[0-9]+){0,2}", "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
            ("--cpus-per-task", "[0-9]{1,6}", "a positive integer"),
            ("--array-chunk", "[0-9]{1,9}", "a positive integer"),
        ]
        for (option, pattern, expected) in syntax {
            guard let v = options[option] else { continue }
            let ok = (try? Regex(pattern).wholeMatch(in: v)) != nil && (!expected.hasPrefix("a positive") || (Int(v) ?? 0) >= 1)
            guard ok else { throw Failure("\(option) \(printable(v)): expected \(expected)") }
        }
    }

    /// Paths that go into sweep.sbatch: none with a control character (a line break would start a
    /// command); those of #SBATCH lines (the sweep and working directories) also without white space, at
    /// which sbatch splits them.
    static func checkBatchScriptPaths(sweepDir: String, cwd: String, script: String, binary: String) throws {
        func bad(_ s: String, blanks: Bool) -> Bool {
            s.unicodeScalars.contains { $0.properties.generalCategory == .control || (blanks && ($0 == " " || $0 == "\t")) }
        }
        for (what, path, blanks) in [("the sweep directory", sweepDir, true), ("the working directory", cwd, true),
                                     ("the script", script, false), ("dbm-lua", binary, false)] where bad(path, blanks: blanks) {
            throw Failure("--slurm: \(what) \(printable(path)) has \(blanks ? "white space or " : "")control characters, "
                + "which sweep.sbatch cannot hold; use a path without them")
        }
    }

    /// Text from arguments for messages: control characters as \u{NN}, so a message is one line.
    static func printable(_ s: String) -> String {
        "'" + s.unicodeScalars.map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined() + "'"
    }

    /// Writes DIR/sweep.sbatch: a job array with one task per chunk of K points (K = --array-chunk, 1
    /// by default); task T runs points T*K ... T*K+K-1 with `dbm-lua sweep --point I DIR`.
    static func writeBatchScript(_ m: Manifest, sweepDir: String, options: [String: String]) throws -> String {
        try checkSlurmOptions(options)
        try checkBatchScriptPaths(sweepDir: sweepDir, cwd: m.cwd, script: m.script, binary: m.binary)
        let chunk = Int(options["--array-chunk"] ?? "1") ?? 1
        let n = m.points.count, tasks = (n + chunk - 1) / chunk
        let name = String(URL(fileURLWithPath: m.script).deletingPathExtension().lastPathComponent.map {
            $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") ? $0 : "_" })
        var lines = [
            "#!/bin/bash",
            "#SBATCH --job-name=sweep-\(name)",
            "#SBATCH --array=0-\(tasks - 1)",
            "#SBATCH --output=\(sweepDir)/slurm-%A_%a.out",
            "#SBATCH --chdir=\(m.cwd)",
            "#SBATCH --ntasks=1",
        ]
        if let p = options["--partition"] { lines.append("#SBATCH --partition=\(p)") }
        if let t = options["--time"] { lines.append("#SBATCH --time=\(t)") }
        if let c = options["--cpus-per-task"] { lines.append("#SBATCH --cpus-per-task=\(c)") }
        lines += [
            "# Written by `dbm-lua sweep --slurm`: \(n) points of \(m.script), \(chunk) per array task.",
            "# Each task runs its points with `dbm-lua sweep --point I DIR`; a point already DONE (or running",
            "# elsewhere, under its flock) is skipped, so the array can be resubmitted to finish a sweep.",
            "# Without Slurm: SLURM_ARRAY_TASK_ID=T bash sweep.sbatch, for T in 0..\(tasks - 1).",
            "set -u",
            "task=${SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID (sbatch does)}",
            "chunk=\(chunk)",
            "points=\(n)",
            "export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
            "status=0",
            "for ((i = task * chunk; i < task * chunk + chunk && i < points; i++)); do",
            "  \(shellQuote(m.binary)) sweep --point \"$i\" \(shellQuote(sweepDir)) || status=1",
            "done",
            "exit $status",
        ]
        let path = sweepDir + "/sweep.sbatch"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    static func submitBatch(_ path: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch", "--parsable", path]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch { throw Failure("cannot run sbatch: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0 else { throw Failure("sbatch \(path) failed (exit status \(p.terminationStatus))") }
        let id = text.split(separator: ";").first.map(String.init) ?? text
        print("sweep: submitted job \(id)")
        return 0
    }
}
