import DBMCore

/// The paper's small models (DESIGN §3), whose hot loops must not run in Lua: each runs alone or as an
/// ensemble of independent seeds on both cores, and returns its levels as tensors the recorder and the
/// diagnostics read. One file per model.
public enum Models {}
