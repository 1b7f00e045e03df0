import CLineEdit
import CLua
import CLua54
import DBMCore
import Foundation

/// The interactive loop: line editing and history (libedit), multi-line input for incomplete chunks,
/// expression values printed (tensors pretty-printed), errors with a traceback that never end the
/// session, Ctrl-C interrupting the running chunk, tab completion of globals and fields.
/// When standard input is not a terminal (`dbm-lua -i < file`, tests) it runs the same loop without
/// prompts or line editing; without -i, `dbm-lua` runs such input as one chunk instead, as `lua` does.
public final class REPL {
    let state: LuaState
    let interactive: Bool
    let historyPath: String

    public init(state: LuaState, interactive: Bool? = nil) {
        self.state = state
        self.interactive = interactive ?? (isatty(0) != 0)
        historyPath = (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.dbm_lua_history"
    }

    public func run() -> Int32 {
        state.run("""
            help = function(...)
              if select("#", ...) > 0 and (...) == nil then
                print("help: the value given is nil (a misspelt or undefined name?); help() lists the dbm functions")
              else print(dbm.help(...)) end
            end
            """, name: "=[dbm] repl")
        if interactive {
            print("dbm-lua \(DBMVersion.string) (Lua 5.4) — help() lists the dbm functions, help(f) explains one; Ctrl-D quits")
            dbm_completion_install(state.L)
            dbm_history_load(historyPath)
        }
        var buffer = ""
        while true {
            guard let line = readLine(prompt: buffer.isEmpty ? "> " : ">> ") else {
                if dbm_sigint_pending() != 0 { print(""); buffer = ""; continue }   // Ctrl-C at the prompt
                break
            }
            buffer += buffer.isEmpty ? line : "\n" + line
            switch evaluate(buffer) {
            case .incomplete: continue
            case .done:
                if interactive && !buffer.trimmingCharacters(in: .whitespaces).isEmpty {
                    dbm_history_add(buffer)
                    dbm_history_save(historyPath)
                }
                buffer = ""
            }
        }
        if interactive { print("") }
        return 0
    }

    enum Outcome { case incomplete, done }

    /// Compiles `return <line>` (an expression, whose values are printed) or else the line as a
    /// statement; an error at <eof> means the chunk continues on the next line.
    func evaluate(_ input: String) -> Outcome {
        let L = state.L
        // `=expr` prints expr, as in the REPL of Lua 5.1–5.3.
        let code = input.hasPrefix("=") ? "return " + input.dropFirst() : input
        let base = lua_gettop(L)
        let asExpression = "return " + code
        if dbm_loadbuffer(L, asExpression, asExpression.utf8.count, "=stdin") != 0 {
            dbm_pop(L, 1)
            if dbm_loadbuffer(L, code, code.utf8.count, "=stdin") != 0 {
                let msg = state.popMessage()
                if msg.hasSuffix("<eof>") { return .incomplete }
                dbm_write_stderr(msg + "\n")
                return .done
            }
        }
        dbm_sigint_arm(L)
        let st = dbm_pcall_traceback(L, 0, LUA_MULTRET)
        dbm_sigint_disarm()
        if st != 0 {
            dbm_write_stderr(state.popMessage() + "\n")
            lua_settop(L, base)
            return .done
        }
        let n = lua_gettop(L) - base
        if n > 0 {
            // dbm._show(...) prints the values (tensors through __tostring, short tables inline).
            lua_rawgeti(L, dbm_registryindex(), lua_Integer(LUA_RIDX_GLOBALS))
            if dbm_get_field(L, -1, "dbm") == 0, lua_type(L, -1) == LUA_TTABLE, dbm_get_field(L, -1, "_show") == 0,
               lua_type(L, -1) == LUA_TFUNCTION {
                lua_rotate(L, base + 1, 1)    // show v1..vn globals dbm
                lua_settop(L, base + 1 + n)   // show v1..vn
                if dbm_pcall_traceback(L, n, 0) != 0 { dbm_write_stderr(state.popMessage() + "\n") }
            }
        }
        dbm_flush_stdout()
        lua_settop(L, base)
        return .done
    }

    func readLine(prompt: String) -> String? {
        if interactive {
            dbm_sigint_disarm()
            guard let p = dbm_readline(prompt) else { return nil }
            defer { free(p) }
            return String(cString: p)
        }
        return Swift.readLine(strippingNewline: true)
    }
}

