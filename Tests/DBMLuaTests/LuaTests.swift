import Foundation
import Testing
import DBMCore
import DBMLua

/// Folder of the Lua test scripts (next to this file).
let luaTestFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("lua").path

/// The dbm-lua executable built next to the test bundle (scripts/test builds it first).
func dbmLuaBinary() throws -> String {
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let path = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("dbm-lua").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw DBMError("dbm-lua is not built at \(path): run `swift build -c release` (scripts/test does) before the tests")
    }
    return path
}

/// A new empty folder under the system's temporary directory, named prefix-<UUID>.
func makeTempDir(_ prefix: String) throws -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

struct ProcessResult { let status: Int32; let stdout: String; let stderr: String }

/// Runs a command with the given standard input; returns its status and output.
func runProcess(_ path: String, _ args: [String], stdin: String = "", environment: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
    p.standardInput = inPipe; p.standardOutput = outPipe; p.standardError = errPipe
    try p.run()
    inPipe.fileHandleForWriting.write(stdin.data(using: .utf8)!)
    try inPipe.fileHandleForWriting.close()
    // Read both pipes concurrently so that neither fills up and blocks the child.
    nonisolated(unsafe) var errData = Data()
    let errThread = Thread { errData = errPipe.fileHandleForReading.readDataToEndOfFile() }
    errThread.start()
    let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !errThread.isFinished { usleep(1000) }
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

@Suite("Lua test scripts run through the host")
struct LuaScriptTests {
    func runScript(_ name: String) throws {
        let state = try LuaState()
        let err = state.runFile(luaTestFolder + "/" + name)
        #expect(err == nil, "\(name): \(err ?? "")")
    }

    @Test("tensors from Lua: creation, views, broadcasting, reductions, matmul, printing, config")
    func tensorBasics() throws { try runScript("tensor_basics.lua") }

    @Test("a few hundred bad calls are each caught as a Lua error naming the function and the line")
    func badInputNeverCrashes() throws { try runScript("errors.lua") }

    @Test("gradients from Lua: dbm.F ops, tensor operators on the tape and nn modules against finite differences; misuse errors")
    func autograd() throws { try runScript("autograd.lua") }

    @Test("dbm.optim from Lua: schedules, a scheduled SGD, AdamW with groups, clipping, against the formulas")
    func optim() throws { try runScript("optim.lua") }

    @Test("the optimizer owns its learning rate: a per-group rate survives a schedule, metrics.jsonl's lr is the rate applied, checkpoints of both layouts resume it")
    func learningRate() throws { try runScript("learning_rate.lua") }

    @Test("train, checkpoint, resume in fresh objects: bitwise the same as without a break (one process)")
    func resume() throws { try runScript("resume.lua") }

    @Test("spectra from Lua: eigvalsh and svdvals against numpy through .npy files, GOE and MP checks")
    func spectra() throws { try runScript("spectra.lua") }

    @Test("character datasets from Lua: sorted vocabulary, 1-based ids, 90/10 split, batches with y = x shifted by one; bad calls name the line")
    func dataset() throws { try runScript("dataset.lua") }

    @Test("dbm.models from Lua: live weights, steps, levels, ensembles; statistics helpers; noise temperature; bad calls name the line")
    func models() throws { try runScript("models.lua") }

    @Test("dbm.config from Lua: one type rule; presets; --resume=RUN_DIR then the arguments; rules beside the defaults, with messages naming the key and the script's line")
    func config() throws { try runScript("config.lua") }

    @Test("dbm.laws from Lua: Marchenko–Pastur, semicircle, spacing and ratio laws against their formulas; numbers, tables, tensors; the old names are the same laws; help; bad calls name the line")
    func laws() throws { try runScript("laws.lua") }
}
