import DBMCore
import Foundation
import Testing

// The BLAS kernel dbm-lua runs on (issue 12): a generic fallback of OpenBLAS is replaced, before main, by
// the best kernel the build has for the CPU; a kernel set in the environment is obeyed.

/// The CPU's flags as the Linux kernel reports them (only those the OS has enabled).
private func cpuFlags() -> Set<String> {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
          let colon = line.firstIndex(of: ":") else { return [] }
    return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
}

private func blasInfo(_ bin: String, environment: [String: String]? = nil) throws -> (fields: [String: String], result: ProcessResult) {
    let code = "local b = dbm.blas_info(); for _, k in ipairs({'core', 'source', 'openblas_core', 'threads'}) do "
        + "print(k .. '=' .. tostring(b[k])) end; print('OPENBLAS_CORETYPE=' .. tostring(os.getenv('OPENBLAS_CORETYPE'))); "
        + "print('DBM_LUA_BLAS_RESTART=' .. tostring(os.getenv('DBM_LUA_BLAS_RESTART')))"
    let r = try runProcess(bin, ["-e", code], environment: environment)
    var fields: [String: String] = [:]
    for line in r.stdout.split(separator: "\n") {
        if let eq = line.firstIndex(of: "=") { fields[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
    }
    return (fields, r)
}

@Suite("The BLAS kernel: OpenBLAS's generic fallback replaced, the environment obeyed")
struct BLASKernelTests {
    static let avx2Class: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"]
    static let avx512Class: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    @Test("the rule: a generic kernel on an AVX2 or AVX-512 CPU gives the best kernel the build has; a deliberate choice stays")
    func rule() {
        let all: Set<String> = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]
        let debian12: Set<String> = ["Haswell", "Zen", "SkylakeX", "Cooperlake"]   // OpenBLAS 0.3.21
        // The issue's machine: a current Xeon (AVX-512 with BF16 and AMX) on which 0.3.21 falls back to Prescott.
        #expect(BLASInfo.betterCore(picked: "Prescott", avx2FMA: true, avx512: true, avx512BF16: true, amxBF16: true,
                                    available: debian12) == "Cooperlake")
        #expect(BLASInfo.betterCore(picked: "Prescott", avx2FMA: true, avx512: true, avx512BF16: true, amxBF16: true,
                                    available: all) == "SapphireRapids")
        #expect(BLASInfo.betterCore(picked: "Core2", avx2FMA: true, avx512: true, available: debian12) == "SkylakeX")
        #expect(BLASInfo.betterCore(picked: "Nehalem", avx2FMA: true, avx512: false, available: debian12) == "Haswell")
        #expect(BLASInfo.betterCore(picked: "Barcelona", avx2FMA: true, avx512: false, amd: true, available: debian12) == "Zen")
        #expect(BLASInfo.betterCore(picked: "Sandybridge", avx2FMA: true, avx512: false, available: debian12) == "Haswell")
        #expect(BLASInfo.betterCore(picked: "Prescott", avx2FMA: true, avx512: true, available: ["Haswell"]) == "Haswell")
        // Kept: OpenBLAS chose an AVX2 or AVX-512 kernel itself; the CPU lacks AVX2 or FMA; the build has nothing better.
        #expect(BLASInfo.betterCore(picked: "Haswell", avx2FMA: true, avx512: true, available: all) == nil)
        #expect(BLASInfo.betterCore(picked: "Zen", avx2FMA: true, avx512: true, amd: true, available: all) == nil)
        #expect(BLASInfo.betterCore(picked: "SkylakeX", avx2FMA: true, avx512: true, avx512BF16: true, available: all) == nil)
        #expect(BLASInfo.betterCore(picked: "Prescott", avx2FMA: false, avx512: false, available: all) == nil)
        #expect(BLASInfo.betterCore(picked: "Prescott", avx2FMA: true, avx512: true, available: []) == nil)
    }

    @Test("dbm.blas_info().core against the CPU's flags, or the kernel the environment sets")
    func kernelForThisCPU() throws {
        let bin = try dbmLuaBinary()
        let env = ProcessInfo.processInfo.environment
        let (f, r) = try blasInfo(bin)
        #expect(r.status == 0, "\(r.stderr)")
        let core = (f["core"] ?? "").lowercased()
        print("BLAS kernel: \(f["core"] ?? "?") (source \(f["source"] ?? "?"), OpenBLAS picked \(f["openblas_core"] ?? "?"), threads \(f["threads"] ?? "?"))")
        if let forced = env["OPENBLAS_CORETYPE"] {
            // Obeyed, and left in the environment for the script and its children.
            #expect(core == forced.lowercased() && f["source"] == "user" && f["OPENBLAS_CORETYPE"] == forced, "\(f)")
            print("skipped the check against the CPU's flags: the environment sets OPENBLAS_CORETYPE=\(forced), which dbm-lua obeys")
            return
        }
        if env["OPENBLAS_L2_SIZE"] != nil {
            #expect(f["source"] == "user" && f["core"] == f["openblas_core"], "\(f)")
            print("skipped the check against the CPU's flags: the environment sets OPENBLAS_L2_SIZE, so dbm-lua keeps OpenBLAS's own kernel")
            return
        }
        let flags = cpuFlags()
        #expect(f["OPENBLAS_CORETYPE"] == "nil" && f["DBM_LUA_BLAS_RESTART"] == "nil", "the script sees the user's environment: \(f)")
        if flags.isSuperset(of: ["avx", "avx2", "fma"]) {
            #expect(Self.avx2Class.contains(core), "an AVX2 CPU runs an AVX2 or AVX-512 kernel: \(f)")
        } else {
            print("no AVX2 and FMA on this CPU: any kernel is right")
        }
        let generic = !Self.avx2Class.contains((f["openblas_core"] ?? "").lowercased())
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) && generic {
            #expect(Self.avx512Class.contains(core) && f["source"] == "dbm-lua", "OpenBLAS fell back on an AVX-512 CPU: \(f)")
        }
    }

    // The restart itself, simulated on the kernel that runs now, so that no other kernel is ever loaded
    // here (machines set OPENBLAS_CORETYPE where other kernels are unsafe): the guard a first restart
    // leaves, with OPENBLAS_CORETYPE naming the kernel it asked for.
    @Test("after a restart: the kernel confirmed and checked, source dbm-lua, the variables gone; a failed check falls back with a message")
    func restart() throws {
        let bin = try dbmLuaBinary()
        let core = BLASInfo.current.core
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = core
        env["DBM_LUA_BLAS_RESTART"] = "1 \(core) \(core)"
        let (ok, r1) = try blasInfo(bin, environment: env)
        #expect(r1.status == 0 && ok["core"] == core && ok["source"] == "dbm-lua", "\(ok) \(r1.stderr)")
        #expect(ok["OPENBLAS_CORETYPE"] == "nil" && ok["DBM_LUA_BLAS_RESTART"] == "nil", "\(ok)")
        #expect(r1.stderr.isEmpty, "\(r1.stderr)")

        env["DBM_LUA_TEST_BLAS_CHECK"] = "fail"
        let (back, r2) = try blasInfo(bin, environment: env)
        #expect(r2.status == 0 && back["core"] == core && back["source"] == "openblas", "\(back) \(r2.stderr)")
        #expect(back["OPENBLAS_CORETYPE"] == "nil" && back["DBM_LUA_BLAS_RESTART"] == "nil", "\(back)")
        #expect(r2.stderr.contains("failed its check against plain loops"), "\(r2.stderr)")
    }

    @Test("sgemm and dgemm of the running kernel agree with plain loops within (k + 2)·u·|A||B|")
    func productsAgree() {
        #expect(BLASInfo.productsAgree())
    }
}
