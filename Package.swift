// swift-tools-version:6.0
import PackageDescription

// Layers (DESIGN §4): dbm-lua → DBMLua (the only Lua-aware module) → DBMCore → CBLAS (OpenBLAS, LAPACKE).
let package = Package(
    name: "dbm-lua",
    products: [
        .executable(name: "dbm-lua", targets: ["dbm-lua"]),
    ],
    targets: [
        .systemLibrary(name: "CLua54", path: "Sources/CLua54", pkgConfig: "lua5.4",
                       providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CEditLine", path: "Sources/CEditLine", pkgConfig: "libedit",
                       providers: [.apt(["libedit-dev"])]),
        // C shim: wrappers for Lua's C-API macros, the error trampoline, protected pushes, SIGINT hook.
        .target(name: "CLua", dependencies: ["CLua54"], path: "Sources/CLua"),
        // C side of the REPL's line editing (libedit's globals and callbacks): history, tab completion.
        .target(name: "CLineEdit", dependencies: ["CLua54", "CEditLine"], path: "Sources/CLineEdit"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Chooses the OpenBLAS kernel before main when OpenBLAS fell back to a generic one (issue 12): a C
        // constructor linked into every executable through DBMCore.
        .target(name: "CBLASKernel", dependencies: ["CBLAS"], path: "Sources/CBLASKernel"),
        .target(name: "DBMCore", dependencies: ["CBLAS", "CBLASKernel", "CZlib"], path: "Sources/DBMCore"),
        // Element-wise float kernels (exp, the normal CDF, GELU) in C, built for AVX2 + FMA and for baseline
        // x86-64, the loader picking one per CPU; Swift is built for baseline x86-64 only.
        .target(name: "CKernels", dependencies: ["CBLASKernel"], path: "Sources/CKernels"),
        // Reverse-mode autodiff (the tape) and the differentiable ops as Swift kernels (issue 4).
        .target(name: "DBMNN", dependencies: ["DBMCore", "CBLAS", "CKernels"], path: "Sources/DBMNN"),
        // The paper's small models (teacher–student, RBMs, Dyson Brownian motion) and their ensembles (issue 6).
        .target(name: "DBMModels", dependencies: ["DBMCore", "CBLAS"], path: "Sources/DBMModels"),
        // `dbm-lua sweep`: a grid of runs of one script as child processes, or a Slurm job array (no Lua).
        .target(name: "DBMSweep", path: "Sources/DBMSweep"),
        .target(name: "DBMLua", dependencies: ["DBMCore", "DBMNN", "DBMModels", "DBMSweep", "CLua", "CLua54", "CLineEdit"], path: "Sources/DBMLua",
                resources: [.embedInCode("LuaLib")]),
        .executableTarget(name: "dbm-lua", dependencies: ["DBMLua"], path: "Sources/dbm-lua"),
        .executableTarget(name: "dbm-bench", dependencies: ["DBMLua", "DBMCore", "DBMNN", "DBMModels", "CBLAS", "CLua"], path: "Sources/dbm-bench"),
        .testTarget(name: "DBMCoreTests", dependencies: ["DBMCore"], path: "Tests/DBMCoreTests"),
        .testTarget(name: "DBMNNTests", dependencies: ["DBMNN", "DBMCore", "CKernels"], path: "Tests/DBMNNTests"),
        .testTarget(name: "DBMModelsTests", dependencies: ["DBMModels", "DBMCore"], path: "Tests/DBMModelsTests"),
        // weightwatcher/: scripts/validate's comparison with WeightWatcher, run from the source tree.
        .testTarget(name: "DBMLuaTests", dependencies: ["DBMLua", "DBMCore"], path: "Tests/DBMLuaTests",
                    exclude: ["weightwatcher"], resources: [.copy("lua")]),
    ]
)
