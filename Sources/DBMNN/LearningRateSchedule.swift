import DBMCore
import Foundation

/// A learning-rate schedule: γ(t), the rate of the update that takes the step count from t to t + 1
/// (t = 0 for the first update). The optimizer holds one and evaluates it at each step; a group whose own
/// rate differs from the optimizer's base rate gets the schedule scaled by the ratio
/// (`Optimizer.learningRates`).
public enum LearningRateSchedule: Sendable, Equatable {
    /// γ(t) = lr.
    case constant(lr: Double)
    /// nanoGPT's get_lr: the linear warm-up lr·(t + 1)/(warmup + 1) for t < warmup, then the cosine decay
    /// minLR + ½(1 + cos(π(t − warmup)/(total − warmup)))·(lr − minLR) up to t = total, and minLR after.
    case cosine(lr: Double, warmup: Double, total: Double, minLR: Double)
    /// γ(t) = lr·gamma^⌊t/every⌋.
    case stepDecay(lr: Double, every: Double, gamma: Double)

    /// "constant", "cosine" or "step_decay", for messages and for Lua.
    public var name: String {
        switch self {
        case .constant: "constant"
        case .cosine: "cosine"
        case .stepDecay: "step_decay"
        }
    }

    /// γ(t) for the update from step t (≥ 0). The arithmetic is nanoGPT's (and was this project's Lua
    /// schedules', to the bit), so a run scheduled here repeats one scheduled there.
    public func rate(at step: Int) -> Double {
        let t = Double(step)
        switch self {
        case .constant(let lr):
            return lr
        case .cosine(let lr, let warmup, let total, let minLR):
            if t < warmup { return lr * Double(step + 1) / (warmup + 1) }
            if t > total { return minLR }
            let ratio = (t - warmup) / (total - warmup)
            return minLR + 0.5 * (1 + cos(Double.pi * ratio)) * (lr - minLR)
        case .stepDecay(let lr, let every, let gamma):
            return lr * Double.pow(gamma, (t / every).rounded(.down))
        }
    }

    /// Throws unless the constants make a schedule: rates finite and ≥ 0, 0 ≤ warmup < total, every ≥ 1,
    /// gamma finite and ≥ 0.
    public func validate() throws {
        func nonNegative(_ what: String, _ x: Double) throws {
            guard x.isFinite && x >= 0 else { throw DBMError("\(what): expected a finite non-negative number, got \(x)") }
        }
        switch self {
        case .constant(let lr):
            try nonNegative("lr", lr)
        case .cosine(let lr, let warmup, let total, let minLR):
            try nonNegative("lr", lr)
            try nonNegative("min_lr", minLR)
            guard warmup >= 0 && total > warmup && total.isFinite else {
                throw DBMError("expected 0 <= warmup < total, got warmup = \(warmup), total = \(total)")
            }
        case .stepDecay(let lr, let every, let gamma):
            try nonNegative("lr", lr)
            try nonNegative("gamma", gamma)
            guard every >= 1 && every.isFinite else {
                throw DBMError("every: expected a positive number of steps, got \(every)")
            }
        }
    }
}
