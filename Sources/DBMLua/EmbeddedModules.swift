/// The Lua half of the library, compiled into the binary (so dbm-lua works from any folder):
/// module name for `require`, and the file's bytes (Sources/DBMLua/LuaLib/, embedded by SwiftPM).
/// `dbm.lua` itself is loaded first by LuaState; these are loaded on first `require`.
enum EmbeddedModules {
    static let all: [(name: String, file: String, source: [UInt8])] = [
        ("dbm.diagnostics", "diagnostics.lua", PackageResources.diagnostics_lua),
        ("dbm.recorder", "recorder.lua", PackageResources.recorder_lua),
        ("dbm.plot", "plot.lua", PackageResources.plot_lua),
        ("dbm.analyze", "analyze.lua", PackageResources.analyze_lua),
        ("dbm.progress", "progress.lua", PackageResources.progress_lua),
    ]
}
