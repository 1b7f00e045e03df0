import CLua
import CLua54
import DBMCore
import DBMSweep
import Foundation

/// The `dbm-lua` command, with the conventions of the standard `lua` command.
public enum CommandLine {
    static let usage = """
    usage: dbm-lua [options] [script [args]]
    Runs a Lua 5.4 script with the dbm library loaded as the global `dbm`.
      script        run this file; its arguments are in `arg` (read --key=value with dbm.config)
      -e chunk      run the string 'chunk'
      -i            enter the interactive REPL after running the script (on any standard input)
      -             run standard input as a script
      -v, --version print the version
      -h, --help    print this help
    dbm-lua analyze FILE ...    spectral diagnostics of the matrices in FILE (--help for more)
    dbm-lua sweep SCRIPT --grid key=v1,v2 ...   a grid of runs, locally or on Slurm (--help for more)
    dbm-lua report DIR          (re)draws the plots and index.html of a run or sweep directory
    With no script, starts the REPL (line editing, history, tab completion, help(f)).
    Plugins and modules are found in $DBM_LUA_PATH (colon-separated) and the project's plugins/.
    """

    public static func main() {
        dbm_stdout_line_buffered()   // LAPACK writes its errors to stdout: keep them on a crash
        let status = run(Array(Swift.CommandLine.arguments.dropFirst()))
        // The run is over and its files are closed (exit hooks included). _exit skips the C++ static
        // destructors, which shut OpenBLAS's thread pool down while our worker threads may still be
        // parked: a rare SIGSEGV at exit after Ctrl-C, seen once in CI.
        fflush(nil)
        _exit(status)
    }

    /// Runs the command with the given arguments (without the program name); returns the exit status.
    public static func run(_ args: [String]) -> Int32 {
        // Subcommands are Lua modules of the library: `dbm-lua analyze FILE ...`.
        // `dbm-lua sweep ...` runs in Swift (it spawns and waits for processes); `sweep collect` is Lua.
        if args.first == "sweep" {
            if args.count > 1 && args[1] == "collect" { return runSubcommand("sweep_collect", Array(args.dropFirst(2))) }
            return Sweep.main(Array(args.dropFirst()))
        }
        if let sub = args.first, subcommands.contains(sub) {
            return runSubcommand(sub, Array(args.dropFirst()))
        }
        var chunks: [String] = []
        var interactive = false
        var i = 0
        var script: String? = nil
        while i < args.count {
            let a = args[i]
            if a == "-e" {
                guard i + 1 < args.count else { dbm_write_stderr("dbm-lua: '-e' needs an argument\n\(usage)\n"); return 1 }
                chunks.append(args[i + 1]); i += 2; continue
            }
            if a == "-i" { interactive = true; i += 1; continue }
            if a == "-v" || a == "--version" {
                print("dbm-lua \(DBMVersion.string) (Lua 5.4, LAPACKE)\nBLAS: \(BLASInfo.current.summary)\n"
                      + "Lua library: \(LuaState.librarySummary)")
                return 0
            }
            if a == "-h" || a == "--help" { print(usage); return 0 }
            if a == "--" { i += 1; if i < args.count { script = args[i] }; break }
            if a.hasPrefix("-") && a != "-" { dbm_write_stderr("dbm-lua: unrecognized option '\(a)'\n\(usage)\n"); return 1 }
            script = a; break
        }
        let scriptArgs = script == nil ? [] : Array(args[(i + 1)...])
        let state: LuaState
        do { state = try LuaState() } catch { dbm_write_stderr("dbm-lua: \(error)\n"); return 1 }
        state.setArg(script: script ?? "dbm-lua", args: scriptArgs, preceding: Array(args[..<min(i, args.count)]))

        for c in chunks {
            if let err = state.runInterruptible(c, name: "=(command line)") { return failed(state, err) }
        }
        if let script {
            if let err = state.runFile(script == "-" ? nil : script) { return failed(state, err) }
        }
        var status: Int32 = 0
        if interactive || (script == nil && chunks.isEmpty && isatty(0) != 0) {
            status = REPL(state: state).run()
        } else if script == nil && chunks.isEmpty {
            // As `lua` does: standard input that is not a terminal is one chunk (its locals span lines,
            // an error stops it with status 1); `-i` keeps the line-by-line REPL on any input.
            if let err = state.runFile(nil) { return failed(state, err) }
        }
        state.runExitHooks()
        return status
    }

    /// Reports the error that ended a script and runs the exit hooks; returns the exit status. Ctrl-C is
    /// one line saying where the script was (no traceback: nothing went wrong) and status 130, as shells do.
    static func failed(_ state: LuaState, _ err: String) -> Int32 {
        let first = err.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? err
        // Without a position when the hook raised at a C function's return (luaL_where finds no Lua line
        // there): 1 of 30 interrupted runs of the Ctrl-C stress test ended with status 1.
        let interrupted = first.hasSuffix(": interrupted!") || first == "interrupted!"
        if interrupted {
            let at = first.dropLast("interrupted!".count).dropLast(2)
            dbm_write_stderr("dbm-lua: interrupted (Ctrl-C) at \(at.isEmpty ? "the return of a library call" : String(at))\n")
        } else {
            dbm_write_stderr("dbm-lua: \(err)\n")
        }
        state.runExitHooks()
        return interrupted ? 130 : 1
    }

    static let subcommands: Set<String> = ["analyze", "report"]

    /// Runs require("dbm.<name>").main(args), which returns an exit status.
    static func runSubcommand(_ name: String, _ args: [String]) -> Int32 {
        let state: LuaState
        do { state = try LuaState() } catch { dbm_write_stderr("dbm-lua: \(error)\n"); return 1 }
        state.setArg(script: "dbm-lua \(name)", args: args, preceding: [])
        let code = "dbm._status = require('dbm.\(name)').main(arg)"
        if let err = state.runInterruptible(code, name: "=[dbm] \(name)") {
            state.runExitHooks()
            dbm_write_stderr("dbm-lua \(name): \(err)\n")
            return 1
        }
        state.runExitHooks()
        let status = (try? state.evaluate("math.tointeger(dbm._status) or 0"))?.first.flatMap { Int32($0) }
        return status ?? 0
    }
}

extension LuaState {
    /// Sets the global `arg` as the standalone lua does: arg[0] the script, arg[1..] its arguments.
    func setArg(script: String, args: [String], preceding: [String]) {
        scriptArgs = args
        var code = "arg = {[0] = \(luaQuote(script))"
        for (k, a) in preceding.enumerated() { code += ", [\(k - preceding.count)] = \(luaQuote(a))" }
        for a in args { code += ", \(luaQuote(a))" }
        code += "}"
        run(code, name: "=(arg)")
    }

    /// Runs the functions registered with dbm.on_exit (a second Ctrl-C interrupts them).
    public func runExitHooks() {
        _ = runInterruptible("dbm._run_exit_hooks()", name: "=[dbm] exit")
    }

    /// Runs a chunk with Ctrl-C armed to interrupt it.
    func runInterruptible(_ code: String, name: String) -> String? {
        dbm_sigint_arm(L)
        defer { dbm_sigint_disarm() }
        return run(code, name: name)
    }

    /// Runs a script file (nil: standard input) with the script's arguments as `...`.
    public func runFile(_ path: String?) -> String? {
        var code: String
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                return "cannot open \(path): " + (FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file")
            }
            code = String(decoding: data, as: UTF8.self)
        } else {
            code = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        if code.hasPrefix("#") { code = "--" + code }   // a shebang line; line numbers stay the same
        let name = path.map { "@" + $0 } ?? "=stdin"
        if dbm_loadbuffer(L, code, code.utf8.count, name) != 0 { return popMessage() }
        // The script's arguments as its varargs, as the standalone lua passes them.
        for a in scriptArgs {
            if dbm_push_string(L, a, a.utf8.count) != 0 { return popMessage() }
        }
        dbm_sigint_arm(L)
        defer { dbm_sigint_disarm() }
        return dbm_pcall_traceback(L, Int32(scriptArgs.count), 0) == 0 ? nil : popMessage()
    }
}

func luaQuote(_ s: String) -> String {
    var out = "\""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\\"): out += "\\\\"
        case UInt8(ascii: "\""): out += "\\\""
        case 0x20...0x7e: out.append(Character(UnicodeScalar(b)))
        default: out += "\\" + String(format: "%03d", b)
        }
    }
    return out + "\""
}
