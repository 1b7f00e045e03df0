/// The Lua half of the library, compiled into the binary (used where no source tree is found, see
/// LuaState.libraryLocation):
/// module name for `require`, and the file's bytes (Sources/DBMLua/LuaLib/, embedded by SwiftPM).
/// `dbm.lua` itself is loaded first by LuaState; these are loaded on first `require`.
enum EmbeddedModules {
    static let all: [(name: String, file: String, source: [UInt8])] = [
        ("dbm.diagnostics", "diagnostics.lua", PackageResources.diagnostics_lua),
        ("dbm.recorder", "recorder.lua", PackageResources.recorder_lua),
        ("dbm.plot", "plot.lua", PackageResources.plot_lua),
        ("dbm.history", "history.lua", PackageResources.history_lua),
        ("dbm.analyze", "analyze.lua", PackageResources.analyze_lua),
        ("dbm.model_files", "model_files.lua", PackageResources.model_files_lua),
        ("dbm.analyze_output", "analyze_output.lua", PackageResources.analyze_output_lua),
        ("dbm.analyze_series", "analyze_series.lua", PackageResources.analyze_series_lua),
        ("dbm.qkv", "qkv.lua", PackageResources.qkv_lua),
        ("dbm.config", "config.lua", PackageResources.config_lua),
        ("dbm.sweep_collect", "sweep_collect.lua", PackageResources.sweep_collect_lua),
        ("dbm.progress", "progress.lua", PackageResources.progress_lua),
        ("dbm.summary", "summary.lua", PackageResources.summary_lua),
        ("dbm.report", "report.lua", PackageResources.report_lua),
        ("dbm.html", "html.lua", PackageResources.html_lua),
        ("dbm.tensorboard", "tensorboard.lua", PackageResources.tensorboard_lua),
        ("dbm.optim", "optim.lua", PackageResources.optim_lua),
        ("dbm.checkpoint", "checkpoint.lua", PackageResources.checkpoint_lua),
        ("dbm.models", "models.lua", PackageResources.models_lua),
        ("dbm.stats", "stats.lua", PackageResources.stats_lua),
        ("dbm.nn", "nn.lua", PackageResources.nn_lua),
        ("dbm.nn.Module", "nn/Module.lua", PackageResources.Module_lua),
        ("dbm.nn.Linear", "nn/Linear.lua", PackageResources.Linear_lua),
        ("dbm.nn.Embedding", "nn/Embedding.lua", PackageResources.Embedding_lua),
        ("dbm.nn.LayerNorm", "nn/LayerNorm.lua", PackageResources.LayerNorm_lua),
        ("dbm.nn.Dropout", "nn/Dropout.lua", PackageResources.Dropout_lua),
        ("dbm.nn.GELU", "nn/GELU.lua", PackageResources.GELU_lua),
        ("dbm.nn.ModuleList", "nn/ModuleList.lua", PackageResources.ModuleList_lua),
        ("dbm.nn.Sequential", "nn/Sequential.lua", PackageResources.Sequential_lua),
        ("dbm.nn.CausalSelfAttention", "nn/CausalSelfAttention.lua", PackageResources.CausalSelfAttention_lua),
        ("dbm.nn.MLP", "nn/MLP.lua", PackageResources.MLP_lua),
        ("dbm.nn.Block", "nn/Block.lua", PackageResources.Block_lua),
        ("dbm.nn.GPT", "nn/GPT.lua", PackageResources.GPT_lua),
    ]
}
