import CBLAS
import CBLASKernel
import Foundation

/// What BLAS runs: the library, its version, the kernel in use, the thread count, and who chose the
/// kernel (see Sources/CBLASKernel: a generic fallback of OpenBLAS is replaced before main).
public struct BLASInfo: Sendable, Equatable {
    public let library: String
    public let version: String
    /// The kernel in use (OpenBLAS's name: Haswell, SkylakeX, Prescott, ...).
    public let core: String
    /// The kernel OpenBLAS picked on its own (differs from `core` when dbm-lua chose another).
    public let openblasCore: String
    public let threads: Int
    /// "openblas" (OpenBLAS's own choice), "user" (OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE was set in the
    /// environment, and obeyed) or "dbm-lua" (chosen for this CPU's features, the process restarted).
    public let source: String
    /// OpenBLAS's build description (openblas_get_config).
    public let config: String

    public static var current: BLASInfo {
        let config = String(cString: openblas_get_config())
        // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": the library and its version are the first two words.
        let words = config.split(separator: " ")
        return BLASInfo(library: words.first.map(String.init) ?? "OpenBLAS",
                        version: words.count > 1 ? String(words[1]) : "unknown",
                        core: String(cString: dbm_blas_core()), openblasCore: String(cString: dbm_blas_openblas_core()),
                        threads: Int(openblas_get_num_threads()), source: String(cString: dbm_blas_source()), config: config)
    }

    /// One line for logs and benchmarks: "OpenBLAS 0.3.21, kernel Haswell (chosen by user), 2 threads".
    public var summary: String {
        "\(library) \(version), kernel \(core) (chosen by \(source)\(openblasCore != core ? ", OpenBLAS picked \(openblasCore)" : "")), "
            + "\(threads) thread\(threads == 1 ? "" : "s")"
    }

    /// The kernel dbm-lua asks for when OpenBLAS picked `picked` on a CPU with these features and the
    /// build has the kernels `available`; nil to keep `picked`. (The rule the constructor applies.)
    public static func betterCore(picked: String, avx2FMA: Bool, avx512: Bool, avx512BF16: Bool = false,
                                  amxBF16: Bool = false, amd: Bool = false, available: Set<String>) -> String? {
        let f = dbm_cpu_features(avx2_fma: avx2FMA ? 1 : 0, avx512: avx512 ? 1 : 0, avx512_bf16: avx512BF16 ? 1 : 0,
                                 amx_bf16: amxBF16 ? 1 : 0, amd: amd ? 1 : 0)
        let bits = kernelBits.filter { available.contains($0.name) }.reduce(UInt32(0)) { $0 | $1.bit }
        return dbm_blas_better_core(picked, f, bits).map { String(cString: $0) }
    }

    /// The kernels dbm-lua may ask for that this OpenBLAS build has.
    public static var buildKernels: Set<String> {
        let bits = dbm_blas_build_cores()
        return Set(kernelBits.filter { bits & $0.bit != 0 }.map(\.name))
    }

    private static let kernelBits: [(name: String, bit: UInt32)] = [
        ("Haswell", UInt32(DBM_CORE_HASWELL)), ("Zen", UInt32(DBM_CORE_ZEN)), ("SkylakeX", UInt32(DBM_CORE_SKYLAKEX)),
        ("Cooperlake", UInt32(DBM_CORE_COOPERLAKE)), ("SapphireRapids", UInt32(DBM_CORE_SAPPHIRERAPIDS))]

    /// This CPU's features as the constructor sees them (CPUID and XCR0).
    public static var cpuFeatures: (avx2FMA: Bool, avx512: Bool, avx512BF16: Bool, amxBF16: Bool, amd: Bool) {
        let f = dbm_cpu_detect()
        return (f.avx2_fma != 0, f.avx512 != 0, f.avx512_bf16 != 0, f.amx_bf16 != 0, f.amd != 0)
    }

    /// The CPU as the kernel names it, for benchmark headers: "AMD EPYC (family 26, model 2)"; "unknown" where
    /// /proc/cpuinfo has no such lines.
    public static var cpuModel: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.isEmpty { break }   // the first processor's block
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        guard let name = fields["model name"] else { return "unknown" }
        guard let family = fields["cpu family"], let model = fields["model"] else { return name }
        return "\(name) (family \(family), model \(model))"
    }

    /// sgemm and dgemm of several shapes against plain loops, as checked after a restart.
    public static func productsAgree() -> Bool { dbm_blas_products_agree() != 0 }
}
