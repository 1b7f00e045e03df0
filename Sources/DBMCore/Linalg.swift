import Foundation
import CBLAS

/// Dense linear algebra for spectra: Gram matrices (BLAS syrk), symmetric eigenvalues (LAPACK syevd)
/// and singular values (LAPACK gesdd). Inputs are 2-D tensors of either dtype and any layout; the
/// computation runs in `dtype` (Float64 by default, whatever the input's dtype).
///
/// LAPACK is called through LAPACKE's `_work` entry points in column-major layout (DESIGN §6): the
/// row-major entry points make transposed temporary copies, and the float workspace query of the
/// convenience entry points can round the size down. Each routine copies its input once (LAPACK
/// destroys the matrix it is given), checking for NaN/Inf in the same pass.
public enum Linalg {

    // ------------------------------------------------------------------ Gram matrix

    /// The smaller Gram matrix of W, full symmetric and contiguous.
    /// Shapes: W (m, n) → WᵀW (n, n) if m ≥ n, else WWᵀ (m, m).
    public static func gram(_ w: Tensor, dtype: DType = .float64) throws -> Tensor {
        try checkMatrix(w, square: false)
        switch dtype {
        case .float64: return try gram(w, Double.self)
        case .float32: return try gram(w, Float.self)
        }
    }

    // ------------------------------------------------------------------ symmetric eigenproblem

    /// Eigenvalues of a symmetric matrix, ascending.
    /// Shapes: A (n, n) → (n). Only the lower triangle of A is read (as numpy's default UPLO = 'L').
    public static func eigvalsh(_ a: Tensor, dtype: DType = .float64) throws -> Tensor {
        try checkMatrix(a, square: true)
        switch dtype {
        case .float64: return try symmetricEigen(a, Double.self, vectors: false).values
        case .float32: return try symmetricEigen(a, Float.self, vectors: false).values
        }
    }

    /// Eigenvalues (ascending) and eigenvectors of a symmetric matrix: vectors[:, i] belongs to values[i],
    /// as numpy.linalg.eigh. Shapes: A (n, n) → values (n), vectors (n, n).
    /// `vectors` is a transposed view of LAPACK's column-major output (like numpy's Fortran-ordered result):
    /// each eigenvector is contiguous in memory. Call `contiguous()` for a row-major copy.
    public static func eigh(_ a: Tensor, dtype: DType = .float64) throws -> (values: Tensor, vectors: Tensor) {
        try checkMatrix(a, square: true)
        let r: (values: Tensor, vectors: Tensor?)
        switch dtype {
        case .float64: r = try symmetricEigen(a, Double.self, vectors: true)
        case .float32: r = try symmetricEigen(a, Float.self, vectors: true)
        }
        return (r.values, r.vectors!)
    }

    // ------------------------------------------------------------------ singular values

    /// Singular values, descending (numpy's order). Shapes: W (m, n) → (min(m, n)).
    public static func svdvals(_ w: Tensor, dtype: DType = .float64) throws -> Tensor {
        try checkMatrix(w, square: false)
        switch dtype {
        case .float64: return try singular(w, Double.self, vectors: false).s
        case .float32: return try singular(w, Float.self, vectors: false).s
        }
    }

    /// Thin SVD W = U·diag(S)·Vᵀ, S descending, U and V with orthonormal columns.
    /// Shapes: W (m, n) → U (m, k), S (k), Vᵀ (k, n), k = min(m, n); all contiguous.
    public static func svd(_ w: Tensor, dtype: DType = .float64) throws -> (u: Tensor, s: Tensor, vt: Tensor) {
        try checkMatrix(w, square: false)
        let r: (u: Tensor?, s: Tensor, vt: Tensor?)
        switch dtype {
        case .float64: r = try singular(w, Double.self, vectors: true)
        case .float32: r = try singular(w, Float.self, vectors: true)
        }
        return (r.u!, r.s, r.vt!)
    }

    // ------------------------------------------------------------------ the levels of many matrices

    /// Matrices whose Gram product takes at least this many multiply-adds (k²·max(m, n), k = min(m, n))
    /// run one at a time on OpenBLAS's threads, which share the product well; smaller ones run
    /// concurrently, one per core, single-threaded: their eigenvalue solve (k = 768: ~80 ms) is mostly
    /// the tridiagonal reduction's matrix–vector products, which two threads hardly speed up. GPT-2 small:
    /// the 50257×768 embedding (3·10¹⁰) is large, every 768×3072 layer (1.8·10⁹) small.
    public static let threadedGramMinimum = 1 << 32

    /// The levels of each matrix, eigvalsh(gram(W)) in Float64 (ascending, as `eigvalsh`), or why W
    /// has none (a non-finite entry, ...). First the Gram matrices of the large ones, one at a time on
    /// BLAS threads (see `threadedGramMinimum`); then, concurrently, one matrix per core with
    /// single-threaded BLAS, the small ones' Gram matrices and every eigenvalue solve (two threads make a
    /// 768×768 solve slower here, not faster: 68–73 ms against 60–66 ms on one).
    public static func gramLevels(_ matrices: [Tensor]) -> [Result<Tensor, DBMError>] {
        @Sendable func attempt(_ body: () throws -> Tensor) -> Result<Tensor, DBMError> {
            do { return .success(try body()) }
            catch let e as DBMError { return .failure(e) }
            catch { return .failure(DBMError("\(error)")) }
        }
        let results = LevelsSlots(count: matrices.count)
        var grams = [Tensor?](repeating: nil, count: matrices.count)
        for (i, w) in matrices.enumerated() where w.rank == 2 {
            let k = min(w.shape[0], w.shape[1]), inner = max(w.shape[0], w.shape[1])
            let (kk, o1) = k.multipliedReportingOverflow(by: k)
            let (macs, o2) = kk.multipliedReportingOverflow(by: inner)
            guard o1 || o2 || macs >= threadedGramMinimum else { continue }
            switch attempt({ try gram(w) }) {
            case .success(let g): grams[i] = g
            case .failure(let e): results.set(i, .failure(e))
            }
        }
        let done = grams
        BLASThreads.concurrently(matrices.count) { i in
            if let g = done[i] { results.set(i, attempt { try eigvalsh(g) }) }
            else if !results.isSet(i) { results.set(i, attempt { try eigvalsh(try gram(matrices[i])) }) }
        }
        return results.all()
    }

    // ------------------------------------------------------------------ implementations

    // W (m, n) → (min(m, n), min(m, n)).
    private static func gram<T: LapackScalar>(_ w: Tensor, _: T.Type) throws -> Tensor {
        let m = w.shape[0], n = w.shape[1]
        if w.dtype != T.dtype { return try gramConverting(w, T.self) }
        var a = w
        try checkFinite(a, T.self)
        try checkLapackSize(max(m, n))

        // syrk reads a matrix with one unit stride and a leading dimension. A row-major W (possibly a
        // narrowed view) has strides [ld, 1]; a transposed view has strides [1, ld]: it is the row-major
        // matrix B = Wᵀ (n, m), so the transpose flag flips instead of copying. Anything else is copied.
        var transposedView = false
        var ld = n
        if a.isContiguous {
            ld = n
        } else if a.strides[1] == 1 && a.strides[0] >= n {
            ld = a.strides[0]
        } else if a.strides[0] == 1 && a.strides[1] >= m {
            transposedView = true
            ld = a.strides[1]
        } else {
            a = try a.copy()
            ld = n
        }
        try checkLapackSize(ld)

        // Row-major W: WᵀW = syrk(Trans), WWᵀ = syrk(NoTrans). With B = Wᵀ the two swap.
        let k = min(m, n), inner = max(m, n)
        let wantsWtW = m >= n
        let trans = wantsWtW != transposedView ? CblasTrans : CblasNoTrans
        let out = try Tensor(shape: [k, k], dtype: T.dtype, zeroed: false)
        let c = out.pointer(T.self)
        // beta = 0: C need not be initialised; syrk writes the upper triangle only.
        T.syrk(CblasRowMajor, CblasUpper, trans, Int32(k), Int32(inner), 1, a.pointer(T.self), Int32(ld),
               0, c, Int32(k))
        // Mirror the upper triangle into the lower one so the result is an ordinary full matrix.
        for i in 0..<k {
            for j in 0..<i { c[i * k + j] = c[j * k + i] }
        }
        return out
    }

    /// Elements of W converted per slab in gramConverting (2 MB of Float64: the slab stays in cache
    /// between its conversion and its product).
    static let gramSlabElements = 1 << 18

    // W (m, n) of another dtype than T → (min(m, n), min(m, n)). W is converted slab by slab along its
    // longer side and the Gram matrix accumulated (syrk with beta = 1), so no converted copy of all of W
    // is made: for a 50257×768 float32 embedding that copy is 309 MB, whose page faults alone took longer
    // than the product here. Each slab's conversion checks that its entries are finite.
    private static func gramConverting<T: LapackScalar>(_ w: Tensor, _: T.Type) throws -> Tensor {
        let m = w.shape[0], n = w.shape[1]
        let k = min(m, n), inner = max(m, n)
        try checkLapackSize(inner)
        let slab = max(1, min(inner, gramSlabElements / k))
        let buffer = try Tensor(shape: [slab * k], dtype: T.dtype, zeroed: false)
        let b = buffer.pointer(T.self)
        let out = try Tensor(shape: [k, k], dtype: T.dtype, zeroed: false)
        let c = out.pointer(T.self)
        for start in stride(from: 0, to: inner, by: slab) {
            let length = min(slab, inner - start)
            // m ≥ n: rows start..<start+length (length × k), C += BᵀB; else columns (k × length), C += BBᵀ.
            let part = try w.narrow(m >= n ? 0 : 1, start, length)
            do {
                switch w.dtype {
                case .float64: try copyRows(part, Double.self, into: b)
                case .float32: try copyRows(part, Float.self, into: b)
                }
            } catch {
                throw firstNonFinite(w, T.self)   // the message names the entry of W, not of the slab
            }
            let trans = m >= n ? CblasTrans : CblasNoTrans
            T.syrk(CblasRowMajor, CblasUpper, trans, Int32(k), Int32(length), 1, b, Int32(m >= n ? k : length),
                   start == 0 ? 0 : 1, c, Int32(k))
        }
        for i in 0..<k {
            for j in 0..<i { c[i * k + j] = c[j * k + i] }
        }
        return out
    }

    /// The error naming the first entry of W that is not finite once converted to D.
    private static func firstNonFinite<D: TensorScalar>(_ w: Tensor, _: D.Type) -> DBMError {
        switch w.dtype {
        case .float64: return firstNonFinite(w, Double.self, D.self)
        case .float32: return firstNonFinite(w, Float.self, D.self)
        }
    }

    private static func firstNonFinite<S: TensorScalar, D: TensorScalar>(_ w: Tensor, _: S.Type, _: D.Type) -> DBMError {
        let src = w.storage.bytes.assumingMemoryBound(to: S.self) + w.offset
        for i in 0..<w.shape[0] {
            for j in 0..<w.shape[1] where !D(src[i * w.strides[0] + j * w.strides[1]]).isFinite {
                return nonFiniteError(w, row: i, S.self, D.self)
            }
        }
        return DBMError("expected finite entries, found a non-finite entry")
    }

    // A (n, n) → values (n), vectors (n, n) or nil.
    private static func symmetricEigen<T: LapackScalar>(_ a: Tensor, _: T.Type, vectors wantVectors: Bool)
        throws -> (values: Tensor, vectors: Tensor?)
    {
        let n = a.shape[0]
        try checkLapackSize(n)
        // The one copy LAPACK may destroy. A symmetric matrix is the same in row- and column-major order,
        // so the row-major copy is passed as column-major (no LAPACKE transposition). LAPACK's upper
        // triangle in column-major terms is the lower triangle of the row-major input (numpy's default).
        let m = try copyChecked(a, T.self)
        let values = try Tensor(shape: [n], dtype: T.dtype, zeroed: false)
        let jobz = lapackChar(wantVectors ? "V" : "N")
        let uplo = lapackChar("U")

        // Workspace: the documented minimum as an exact integer (DESIGN §6: the float query of ssyevd
        // rounds 1+6n+2n² down above 2²⁴), raised to the query's optimum when larger (the optimum lets
        // the tridiagonal reduction run blocked), the query rounded up so it cannot fall short either.
        let minWork = n <= 1 ? 1 : (wantVectors ? 1 + 6 * n + 2 * n * n : 2 * n + 1)
        let minIWork = n <= 1 ? 1 : (wantVectors ? 3 + 5 * n : 1)
        var workQuery: T = 0
        var iworkQuery: Int32 = 0
        var info = T.syevd(LAPACK_COL_MAJOR, jobz, uplo, Int32(n), m.pointer(T.self), Int32(n),
                           values.pointer(T.self), &workQuery, -1, &iworkQuery, -1)
        if info != 0 { throw lapackError("syevd (workspace query)", info) }
        let lwork = max(minWork, roundedUp(workQuery))
        let liwork = max(minIWork, Int(iworkQuery))
        try checkLapackSize(lwork, what: "workspace of \(lwork) elements")
        let work = try Tensor(shape: [lwork], dtype: T.dtype, zeroed: false)
        var iwork = [Int32](repeating: 0, count: liwork)

        info = iwork.withUnsafeMutableBufferPointer { iw in
            T.syevd(LAPACK_COL_MAJOR, jobz, uplo, Int32(n), m.pointer(T.self), Int32(n),
                    values.pointer(T.self), work.pointer(T.self), Int32(lwork), iw.baseAddress!, Int32(liwork))
        }
        if info < 0 { throw lapackError("syevd", info) }
        if info > 0 {
            throw DBMError("the symmetric eigenvalue solver (LAPACK syevd) did not converge for a \(n)×\(n) "
                + "matrix (info = \(info))")
        }
        // Column-major eigenvectors: eigenvector i is memory row i of m, i.e. m holds Vᵀ row-major.
        return (values, wantVectors ? try m.t() : nil)
    }

    // W (m, n) → U (m, k) or nil, S (k), Vᵀ (k, n) or nil, k = min(m, n).
    private static func singular<T: LapackScalar>(_ w: Tensor, _: T.Type, vectors wantVectors: Bool)
        throws -> (u: Tensor?, s: Tensor, vt: Tensor?)
    {
        let m = w.shape[0], n = w.shape[1], k = min(m, n)
        try checkLapackSize(m)
        try checkLapackSize(n)
        // The one copy LAPACK may destroy. Row-major W (m, n) is, in memory, the column-major matrix
        // A' = Wᵀ (n, m) with lda = n: LAPACK factors A' = U' S V'ᵀ, and W = V' S U'ᵀ. So
        //   LAPACK's U'  (n, k) column-major, ldu = n, read row-major as (k, n), is U'ᵀ = Vᵀ of W;
        //   LAPACK's V'ᵀ (k, m) column-major, ldvt = k, read row-major as (m, k), is V' = U of W.
        // Calling column-major on A' is also about 1.5× faster than row-major on W (DESIGN §6).
        let a = try copyChecked(w, T.self)
        let s = try Tensor(shape: [k], dtype: T.dtype, zeroed: false)
        let vt = wantVectors ? try Tensor(shape: [k, n], dtype: T.dtype, zeroed: false) : nil
        let u = wantVectors ? try Tensor(shape: [m, k], dtype: T.dtype, zeroed: false) : nil
        let jobz = lapackChar(wantVectors ? "S" : "N")
        let ldu = wantVectors ? n : 1, ldvt = wantVectors ? k : 1
        // With jobz 'N' the U and VT arrays are not referenced; give LAPACK a valid pointer anyway.
        var unused: T = 0
        var iwork = [Int32](repeating: 0, count: 8 * k)

        func call(_ work: UnsafeMutablePointer<T>, _ lwork: Int) -> Int32 {
            withUnsafeMutablePointer(to: &unused) { unusedPtr in
                iwork.withUnsafeMutableBufferPointer { iw in
                    T.gesdd(LAPACK_COL_MAJOR, jobz, Int32(n), Int32(m), a.pointer(T.self), Int32(n),
                            s.pointer(T.self), vt?.pointer(T.self) ?? unusedPtr, Int32(ldu),
                            u?.pointer(T.self) ?? unusedPtr, Int32(ldvt), work, Int32(lwork), iw.baseAddress!)
                }
            }
        }

        // Workspace: the query's optimum rounded up (a float query can round down), and never below
        // the documented minimum (mx = max(m, n), mn = k).
        let minWork = wantVectors ? 4 * k * k + 7 * k : 3 * k + max(max(m, n), 7 * k)
        var workQuery: T = 0
        var info = call(&workQuery, -1)
        if info != 0 { throw lapackError("gesdd (workspace query)", info) }
        let lwork = max(minWork, roundedUp(workQuery))
        try checkLapackSize(lwork, what: "workspace of \(lwork) elements")
        let work = try Tensor(shape: [lwork], dtype: T.dtype, zeroed: false)

        info = call(work.pointer(T.self), lwork)
        if info < 0 { throw lapackError("gesdd", info) }
        if info > 0 {
            throw DBMError("the singular value decomposition (LAPACK gesdd) did not converge for a \(m)×\(n) "
                + "matrix (info = \(info))")
        }
        return (u, s, vt)
    }

    // ------------------------------------------------------------------ checks and helpers

    private static func checkMatrix(_ a: Tensor, square: Bool) throws {
        guard a.rank == 2 else {
            throw DBMError("expected a 2-D matrix, got a \(a.rank)-D tensor of shape \(formatShape(a.shape))")
        }
        guard a.shape[0] > 0 && a.shape[1] > 0 else {
            throw DBMError("expected a non-empty matrix, got shape \(formatShape(a.shape))")
        }
        if square && a.shape[0] != a.shape[1] {
            throw DBMError("expected a square matrix, got shape \(formatShape(a.shape))")
        }
    }

    /// LAPACK and OpenBLAS here take 32-bit integers.
    private static func checkLapackSize(_ x: Int, what: String? = nil) throws {
        if x > Int(Int32.max) {
            throw DBMError("\(what ?? "a dimension of \(x)") is too large for LAPACK's 32-bit integers "
                + "(at most \(Int32.max))")
        }
    }

    /// A contiguous row-major copy of the 2-D tensor a in type D, checking in the same pass that every
    /// converted entry is finite (so a Float64 value that overflows Float32 is caught too).
    private static func copyChecked<D: LapackScalar>(_ a: Tensor, _: D.Type) throws -> Tensor {
        let out = try Tensor(shape: a.shape, dtype: D.dtype, zeroed: false)
        let dst = out.pointer(D.self)
        switch a.dtype {
        case .float64: try copyRows(a, Double.self, into: dst)
        case .float32: try copyRows(a, Float.self, into: dst)
        }
        return out
    }

    private static func copyRows<S: TensorScalar, D: TensorScalar>(_ a: Tensor, _: S.Type,
                                                                   into dst: UnsafeMutablePointer<D>) throws {
        let m = a.shape[0], n = a.shape[1]
        let rowStride = a.strides[0], colStride = a.strides[1]
        let src = a.storage.bytes.assumingMemoryBound(to: S.self) + a.offset
        for i in 0..<m {
            let s = src + i * rowStride, d = dst + i * n
            // Count non-finite entries without branching, so the loop stays vectorisable.
            var bad = 0
            if colStride == 1 {
                for j in 0..<n { let x = D(s[j]); d[j] = x; bad += x.isFinite ? 0 : 1 }
            } else {
                for j in 0..<n { let x = D(s[j * colStride]); d[j] = x; bad += x.isFinite ? 0 : 1 }
            }
            if bad != 0 { throw nonFiniteError(a, row: i, S.self, D.self) }
        }
    }

    /// Checks every entry of the 2-D tensor a (of type T) is finite, without copying.
    private static func checkFinite<T: TensorScalar>(_ a: Tensor, _: T.Type) throws {
        let m = a.shape[0], n = a.shape[1]
        let src = a.storage.bytes.assumingMemoryBound(to: T.self) + a.offset
        for i in 0..<m {
            let s = src + i * a.strides[0]
            var bad = 0
            for j in 0..<n { bad += s[j * a.strides[1]].isFinite ? 0 : 1 }
            if bad != 0 { throw nonFiniteError(a, row: i, T.self, T.self) }
        }
    }

    /// The error for the first non-finite entry in row i (1-based indices in the message).
    private static func nonFiniteError<S: TensorScalar, D: TensorScalar>(_ a: Tensor, row i: Int,
                                                                         _: S.Type, _: D.Type) -> DBMError {
        let src = a.storage.bytes.assumingMemoryBound(to: S.self) + a.offset + i * a.strides[0]
        for j in 0..<a.shape[1] {
            let x = src[j * a.strides[1]]
            let converted = D(x)
            if converted.isFinite { continue }
            let at = "at (\(i + 1), \(j + 1))"
            if x.isNaN { return DBMError("expected finite entries, found NaN \(at)") }
            if x.isInfinite { return DBMError("expected finite entries, found \(x < 0 ? "-Inf" : "Inf") \(at)") }
            return DBMError("expected finite entries, found \(Double(x)) \(at), which overflows \(D.dtype)")
        }
        return DBMError("expected finite entries, found a non-finite entry in row \(i + 1)")
    }

    /// A workspace size returned by a LAPACK query, rounded up: single precision cannot represent
    /// every integer above 2²⁴, and the query may have been rounded down to the nearest float.
    private static func roundedUp<T: TensorScalar>(_ x: T) -> Int {
        guard x.isFinite, x > 0 else { return 0 }
        let v = Double(x.nextUp).rounded(.up)
        return v >= Double(Int32.max) ? Int(Int32.max) + 1 : Int(v)
    }

    private static func lapackChar(_ c: Unicode.Scalar) -> CChar { CChar(UInt8(ascii: c)) }

    private static func lapackError(_ routine: String, _ info: Int32) -> DBMError {
        DBMError("LAPACK \(routine) rejected argument \(-info) (info = \(info)); this is a bug in dbm-lua")
    }
}

// ------------------------------------------------------------------ BLAS/LAPACK by element type

/// The few BLAS/LAPACK routines Linalg needs, under one name for Float and Double: each signature is
/// written once, generic over the element type, and each type only names its routine (s… or d…).
private typealias Syrk<T> = (CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, Int32, Int32,
                             T, UnsafePointer<T>?, Int32, T, UnsafeMutablePointer<T>?, Int32) -> Void
private typealias Syevd<T> = (Int32, CChar, CChar, Int32, UnsafeMutablePointer<T>?, Int32, UnsafeMutablePointer<T>?,
                              UnsafeMutablePointer<T>?, Int32, UnsafeMutablePointer<Int32>?, Int32) -> Int32
private typealias Gesdd<T> = (Int32, CChar, Int32, Int32, UnsafeMutablePointer<T>?, Int32, UnsafeMutablePointer<T>?,
                              UnsafeMutablePointer<T>?, Int32, UnsafeMutablePointer<T>?, Int32,
                              UnsafeMutablePointer<T>?, Int32, UnsafeMutablePointer<Int32>?) -> Int32

private protocol LapackScalar: TensorScalar {
    static var syrk: Syrk<Self> { get }    // C = alpha·AᵀA + beta·C or alpha·AAᵀ + beta·C, one triangle
    static var syevd: Syevd<Self> { get }  // symmetric eigenvalues (and vectors), divide and conquer
    static var gesdd: Gesdd<Self> { get }  // singular values (and vectors), divide and conquer
}

extension Double: LapackScalar {
    fileprivate static var syrk: Syrk<Double> { cblas_dsyrk }
    fileprivate static var syevd: Syevd<Double> { LAPACKE_dsyevd_work }
    fileprivate static var gesdd: Gesdd<Double> { LAPACKE_dgesdd_work }
}

extension Float: LapackScalar {
    fileprivate static var syrk: Syrk<Float> { cblas_ssyrk }
    fileprivate static var syevd: Syevd<Float> { LAPACKE_ssyevd_work }
    fileprivate static var gesdd: Gesdd<Float> { LAPACKE_sgesdd_work }
}

/// The results of `gramLevels`: each concurrent task writes its own slot only.
private final class LevelsSlots: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Result<Tensor, DBMError>?>
    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }
    deinit { slots.deinitialize(); slots.deallocate() }
    func set(_ i: Int, _ r: Result<Tensor, DBMError>) { slots[i] = r }
    func isSet(_ i: Int) -> Bool { slots[i] != nil }
    func all() -> [Result<Tensor, DBMError>] { slots.map { $0! } }
}
