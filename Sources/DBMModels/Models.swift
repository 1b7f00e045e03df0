import DBMCore

/// The paper's small models (DESIGN §3), whose hot loops must not run in Lua: each runs alone or as an
/// ensemble of independent seeds on both cores, and returns its levels as tensors the recorder and the
/// diagnostics read. One file per model.
public enum Models {}

/// A model that Lua drives step by step (DESIGN §3; issue 6): Lua owns the schedule and the recording,
/// the model owns the hot loop.
///
/// `weight` is the model's state as one live float64 tensor — the weight matrix W (the Dyson simulator:
/// its levels, shape (N)). The same tensor object for the model's whole life: `step` reads it at its start
/// and writes it at its end, so the recorder can watch it and a script can set it between steps.
public protocol SteppedModel: AnyObject {
    /// The name used in messages, e.g. "teacher-student".
    var modelName: String { get }
    /// Advances n update steps (n ≥ 0).
    func step(_ n: Int)
    /// Update steps taken so far.
    var stepCount: Int { get }
    /// The live state tensor (see above).
    var weight: Tensor { get }
    /// The levels the paper follows, ascending: the singular values of W (teacher–student), the eigenvalues
    /// of WᵀW (RBMs), the positions (Dyson).
    func levels() -> [Double]
    /// The model's own scalars for metrics.jsonl, e.g. ("reconstruction_error", 0.1); may be empty.
    func scalars() -> [(String, Double)]
}
