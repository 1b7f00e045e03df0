import DBMCore
import Foundation

/// Prints tensors the way a person wants to read them (as Torch7 did): one shared scale factor when
/// the magnitudes allow, aligned columns, at most 6 rows and 6 columns shown with "..." between the
/// first and last three, and a footer with the dtype and shape.
enum TensorFormat {
    static let edge = 3

    static func describe(_ t: Tensor) -> String {
        let footer = "[\(t.dtype.rawValue) tensor of shape \(formatShape(t.shape))]"
        if t.count == 0 { return "[empty " + footer.dropFirst() }
        if t.rank == 0 { return "\(number(t.toDoubles()[0]))\n" + footer }
        let v = t.toDoubles()
        let finite = v.filter { $0.isFinite }
        let maxAbs = finite.map { abs($0) }.max() ?? 0
        let allIntegral = finite.allSatisfy { $0 == $0.rounded() } && maxAbs < 1e9
        // A shared power-of-ten scale when all magnitudes are far from 1, as Torch prints "1e-03 *".
        var scale = 0
        // (Not below 1e-300: 10^scale would be subnormal or zero there, and the cells would divide by it.)
        if !allIntegral && maxAbs >= 1e-300 && (maxAbs >= 1e4 || maxAbs < 1e-2) { scale = Int(floor(log10(maxAbs))) }
        let factor = pow(10.0, Double(scale))
        func cell(_ x: Double) -> String {
            if x.isNaN { return "nan" }
            if x.isInfinite { return x > 0 ? "inf" : "-inf" }
            if allIntegral { return String(Int64(x)) }
            return String(format: "%.4f", x / factor)
        }
        var out = scale != 0 ? "1e\(scale) *\n" : ""
        let cols = t.shape[t.rank - 1]
        let rows = v.count / max(cols, 1)
        let colIdx = shown(cols), rowIdx = shown(rows)
        var width = 1
        for r in rowIdx { for j in colIdx where j >= 0 { width = max(width, cell(v[r < 0 ? 0 : r * cols + j]).count) } }
        for r in rowIdx {
            if r < 0 { out += " ...\n"; continue }
            if t.rank > 2 && r % t.shape[t.rank - 2] == 0 {
                let lead = Tensor.unflattenPublic(r * cols, t.shape).dropLast(2).map { String($0 + 1) }
                out += "(\(lead.joined(separator: ",")),.,.) =\n"
            }
            let line = colIdx.map { j in j < 0 ? "..." : pad(cell(v[r * cols + j]), width) }
            out += " " + line.joined(separator: " ") + "\n"
        }
        return out + footer
    }

    static func shown(_ n: Int) -> [Int] {
        n <= 2 * edge ? Array(0..<n) : Array(0..<edge) + [-1] + Array((n - edge)..<n)
    }

    static func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}

extension Tensor {
    static func unflattenPublic(_ flat: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count), f = flat
        for d in stride(from: shape.count - 1, through: 0, by: -1) { idx[d] = f % shape[d]; f /= shape[d] }
        return idx
    }
}
