// Speed of the paper's small models (issue 6): update steps per second of one model on one thread (the
// "per core" figure the targets name), and of an ensemble on all cores.
import DBMCore
import DBMModels
import Foundation

enum ModelsBench {
    static func run(reps: Int) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("models (one model on one thread; median of \(reps) runs; ensembles: one model per seed on all \(cores) cores):")
        // After the multithreaded sgemm/GPT runs, OpenBLAS's worker threads spin for about 0.1 s and take a core
        // (NNBench): let them go to sleep first.
        Thread.sleep(forTimeInterval: 0.3)

        // Wall-clock rates are what the targets name; the rate per CPU-second of the thread is printed too,
        // as on this shared machine other processes can take part of the core.
        let rbm = try ScalarFieldRBM(lr: 0.01, seed: 1)
        let r = stepsPerSecond(reps: reps, steps: 50_000) { rbm.step($0) }
        print(String(format: "  scalar-field RBM 10x10, |B| = 16, k = 3: %.0f steps/s/core (target >= 100000; %.0f per CPU-second)",
                     r.wall, r.cpu))
        let ts = try TeacherStudent(lr: 0.1, batchSize: 16, seed: 1)
        let t = stepsPerSecond(reps: reps, steps: 1_000_000) { ts.step($0) }
        print(String(format: "  teacher-student 2x2, |B| = 16: %.0f steps/s/core (target >= 1000000; %.0f per CPU-second)",
                     t.wall, t.cpu))

        // Ensembles: 8 models per core, so that an uneven split costs little.
        let seeds = 0..<(8 * cores)
        let rbmSteps = 20_000
        let rbmTime = try timed { _ = try ScalarFieldRBM.ensemble(seeds: seeds, steps: rbmSteps, lr: 0.01) }
        let rbmTotal = Double(seeds.count * rbmSteps)
        print(String(format: "  scalar-field RBM ensemble of %d seeds × %d steps: %.0f steps/s on %d cores (%.0f per core; %.0f per CPU-second)",
                     seeds.count, rbmSteps, rbmTotal / rbmTime.wall, cores, rbmTotal / rbmTime.wall / Double(cores), rbmTotal / rbmTime.cpu))
        let tsEpochs = 100   // 500 steps each
        let tsTime = try timed { _ = try TeacherStudent.ensemble(seeds: seeds, epochs: tsEpochs) }
        let tsTotal = Double(seeds.count * tsEpochs * TeacherStudent.defaultStepsPerEpoch)
        print(String(format: "  teacher-student ensemble of %d seeds × %d steps (data set drawn per seed, timed too): %.0f steps/s on %d cores "
                     + "(%.0f per core; %.0f per CPU-second)", seeds.count, Int(tsTotal) / seeds.count, tsTotal / tsTime.wall, cores,
                     tsTotal / tsTime.wall / Double(cores), tsTotal / tsTime.cpu))
    }

    /// Medians over reps of steps per second of wall-clock time and of this thread's CPU time for
    /// body(steps), after one untimed warm-up call.
    static func stepsPerSecond(reps: Int, steps: Int, _ body: (Int) -> Void) -> (wall: Double, cpu: Double) {
        body(steps / 10)
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<max(1, reps) {
            let (t0, c0) = (now(), cpuTime(CLOCK_THREAD_CPUTIME_ID))
            body(steps)
            wall.append(Double(steps) / (now() - t0))
            cpu.append(Double(steps) / (cpuTime(CLOCK_THREAD_CPUTIME_ID) - c0))
        }
        return (median(wall), median(cpu))
    }

    /// Wall-clock seconds and the process's CPU seconds (all threads) of body.
    static func timed(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        let (t0, c0) = (now(), cpuTime(CLOCK_PROCESS_CPUTIME_ID))
        try body()
        return (now() - t0, cpuTime(CLOCK_PROCESS_CPUTIME_ID) - c0)
    }

    static func cpuTime(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
