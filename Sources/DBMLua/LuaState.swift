import CLua
import CLua54
import DBMCore
import Foundation

/// What the bridge keeps per Lua state (in the state's extra space): the default generator.
final class BridgeContext {
    var generator = Generator(seed: 0)
    /// Locks held by this state (run directories), by path: released by dbm._unlock or at exit.
    var locks: [String: FileLock] = [:]

    static func of(_ L: OpaquePointer) -> BridgeContext {
        Unmanaged<BridgeContext>.fromOpaque(dbm_extraspace(L)!.pointee!).takeUnretainedValue()
    }
}

/// Releases the Swift object held by a collected userdata (called from the C __gc metamethod).
private let releaseObject: @convention(c) (UnsafeMutableRawPointer?) -> Void = { p in
    if let p { Unmanaged<AnyObject>.fromOpaque(p).release() }
}

/// A Lua 5.4 state with the `dbm` library loaded: the global `dbm`, `require "dbm"`, the Lua half of
/// the library (from the source tree, or embedded in the binary: see libraryLocation), and package.path
/// covering the project's plugins/ and $DBM_LUA_PATH.
public final class LuaState {
    public let L: OpaquePointer
    private let context = BridgeContext()
    var scriptArgs: [String] = []

    public init() throws {
        guard let L = dbm_newstate(releaseObject) else { throw DBMError("cannot create a Lua state (out of memory)") }
        self.L = L
        dbm_extraspace(L)!.pointee = Unmanaged.passUnretained(context).toOpaque()
        try loadLibrary()
    }

    deinit { dbm_close(L) }

    /// The folders searched for plugins and Lua modules, in order: $DBM_LUA_PATH (colon-separated),
    /// then the project's plugins/.
    public static var searchFolders: [String] {
        var folders: [String] = []
        if let extra = ProcessInfo.processInfo.environment["DBM_LUA_PATH"] {
            folders += extra.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let root = projectRoot { folders.append(root + "/plugins") }
        return folders
    }

    /// The project's root folder: where plugins/ lives. The source tree this executable was built in,
    /// else the one this file was compiled from (an installed binary on the machine that built it).
    public static var projectRoot: String? {
        if let sourceTree { return sourceTree }
        // Sources/DBMLua/LuaState.swift → three levels up.
        let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        return isProjectRoot(fromSource) ? fromSource : nil
    }

    /// The project's source tree this executable was built in, found from the executable's real path
    /// (<root>/.build/<triple>/release/dbm-lua), never from the working directory; nil for an installed
    /// binary.
    public static let sourceTree: String? = {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var u = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            if isProjectRoot(u.path) { return u.path }
            u = u.deletingLastPathComponent()
        }
        return nil
    }()

    private static func isProjectRoot(_ path: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: path + "/Package.swift") && fm.fileExists(atPath: path + "/plugins")
            && fm.fileExists(atPath: path + "/" + libraryFolder + "/dbm.lua")
    }

    /// The Lua library's folder in the source tree.
    static let libraryFolder = "Sources/DBMLua/LuaLib"

    /// Where the Lua library is read from: the source tree's Sources/DBMLua/LuaLib (so an edit to the
    /// recorder or a plot needs no rebuild), or, without a source tree or with DBM_LUA_LIBRARY=embedded
    /// (one test pass runs so), the copy of the same files embedded in the binary at build time.
    public static var libraryLocation: String? {
        if ProcessInfo.processInfo.environment["DBM_LUA_LIBRARY"] == "embedded" { return nil }
        return sourceTree.map { $0 + "/" + libraryFolder }
    }

    /// For --version: which copy of the Lua library runs.
    public static var librarySummary: String {
        libraryLocation.map { "\($0) (the source tree: edits take effect without a rebuild)" }
            ?? "the copy embedded in this binary"
    }

    /// The bytes of one file of the Lua library (a path relative to LuaLib), from where libraryLocation
    /// says, else the embedded copy.
    static func librarySource(_ file: String, embedded: [UInt8]) throws -> [UInt8] {
        guard let folder = libraryLocation else { return embedded }
        guard let data = FileManager.default.contents(atPath: folder + "/" + file) else {
            throw DBMError("cannot read the Lua library file \(folder)/\(file) (run with DBM_LUA_LIBRARY=embedded "
                           + "to use the copy built into this binary)")
        }
        return [UInt8](data)
    }

    private func loadLibrary() throws {
        // The core table of Swift functions, then the Lua half, which builds `dbm` on it.
        guard dbm_new_table(L, 0, Int32(Bindings.entries.count)) == 0 else { throw DBMError(popMessage()) }
        let names = Bindings.entries.map { strdup($0.name)! }
        defer { names.forEach { free($0) } }
        let regs = (0..<names.count).map { dbm_reg(name: names[$0], fn: Bindings.dispatch, tag: lua_Integer($0)) }
        guard dbm_register(L, -1, regs, Int32(regs.count)) == 0, dbm_add_indexer_factory(L, -1) == 0 else { throw DBMError(popMessage()) }
        // Help texts: core._help[name] = text.
        guard dbm_new_table(L, 0, Int32(Bindings.entries.count)) == 0 else { throw DBMError(popMessage()) }
        for e in Bindings.entries {
            guard dbm_push_string(L, e.help, e.help.utf8.count) == 0, dbm_set_field(L, -2, e.name) == 0 else { throw DBMError(popMessage()) }
        }
        guard dbm_set_field(L, -2, "_help") == 0 else { throw DBMError(popMessage()) }
        // Metatables of the object kinds, for the Lua half to fill in.
        for (kind, name) in [(DBM_KIND_TENSOR, "_tensor_mt"), (DBM_KIND_GENERATOR, "_generator_mt"), (DBM_KIND_WRITER, "_writer_mt"), (DBM_KIND_OPTIMIZER, "_optimizer_mt"),
                           (DBM_KIND_DATASET, "_dataset_mt"), (DBM_KIND_MODEL, "_model_mt"),
                           (DBM_KIND_APPENDER, "_appender_mt")] {
            dbm_push_metatable(L, Int32(kind))
            guard dbm_set_field(L, -2, name) == 0 else { throw DBMError(popMessage()) }
        }
        let paths = LuaState.searchFolders.map { $0 + "/?.lua" }.joined(separator: ";")
        guard dbm_push_string(L, paths, paths.utf8.count) == 0, dbm_set_field(L, -2, "_plugin_path") == 0 else { throw DBMError(popMessage()) }
        // The embedded Lua modules: core._modules[name] = {file, source}, preloaded by dbm.lua.
        guard dbm_new_table(L, 0, Int32(EmbeddedModules.all.count)) == 0 else { throw DBMError(popMessage()) }
        for m in EmbeddedModules.all {
            guard dbm_new_table(L, 2, 0) == 0 else { throw DBMError(popMessage()) }
            let source = try LuaState.librarySource(m.file, embedded: m.source)
            let ok = source.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { dbm_push_string(L, $0, b.count) } == 0
                    && dbm_set_index(L, -2, 2) == 0
            }
            guard ok, dbm_push_string(L, m.file, m.file.utf8.count) == 0, dbm_set_index(L, -2, 1) == 0,
                  dbm_set_field(L, -2, m.name) == 0 else { throw DBMError(popMessage()) }
        }
        guard dbm_set_field(L, -2, "_modules") == 0 else { throw DBMError(popMessage()) }
        let version = DBMVersion.string
        guard dbm_push_string(L, version, version.utf8.count) == 0, dbm_set_field(L, -2, "_version") == 0 else { throw DBMError(popMessage()) }
        // core is on the stack: run the Lua half with it as its argument; it returns the dbm table.
        let code = String(decoding: try LuaState.librarySource("dbm.lua", embedded: PackageResources.dbm_lua), as: UTF8.self)
        guard dbm_loadbuffer(L, code, code.utf8.count, "=[dbm] dbm.lua") == 0 else { throw DBMError(popMessage()) }
        lua_rotate(L, -2, 1)   // chunk core
        guard dbm_pcall_traceback(L, 1, 1) == 0 else { throw DBMError(popMessage()) }
        lua_settop(L, 0)
    }

    /// Pops the error object on top of the stack as a message (the one path for every caller: the
    /// library's setup, run, evaluate, the command line).
    func popMessage() -> String {
        var len = 0
        let s = dbm_tolstring_raw(L, -1, &len).map { String(cString: $0) } ?? "(error object is not a string)"
        dbm_pop(L, 1)
        return s
    }

    /// Runs a chunk; returns nil on success or the error message with its traceback.
    @discardableResult
    public func run(_ code: String, name: String = "=(string)") -> String? {
        let st = dbm_dostring(L, code, code.utf8.count, name, 0)
        return st == 0 ? nil : popMessage()
    }

    /// Runs code and returns its results converted to strings with tostring (for tests and tools).
    public func evaluate(_ code: String) throws -> [String] {
        let base = lua_gettop(L)
        let st = dbm_dostring(L, "return " + code, code.utf8.count + 7, "=(evaluate)", LUA_MULTRET)
        if st != 0 { throw DBMError(popMessage()) }
        var out: [String] = []
        let n = lua_gettop(L) - base
        for i in 0..<n {
            let idx = base + 1 + i
            var len = 0
            if lua_type(L, idx) == LUA_TSTRING, let p = dbm_tolstring_raw(L, idx, &len) { out.append(String(cString: p)) }
            else if lua_type(L, idx) == LUA_TNUMBER { out.append(formatNumber(dbm_tonumber(L, idx, nil))) }
            else if lua_type(L, idx) == LUA_TBOOLEAN { out.append(lua_toboolean(L, idx) != 0 ? "true" : "false") }
            else if lua_type(L, idx) == LUA_TNIL { out.append("nil") }
            else { out.append(String(cString: lua_typename(L, lua_type(L, idx)))) }
        }
        lua_settop(L, base)
        return out
    }
}

public enum DBMVersion {
    public static let string = "0.1.0"
}
