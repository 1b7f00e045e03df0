import Foundation

/// A JSON value. Objects keep their keys in order (config.json and metrics lines are read by people,
/// and `step`, `time` should come first). `integer` and `number` are kept apart so that counts print
/// without a decimal point and parse back as integers.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// The value under key in an object (the first, if a parsed object repeats the key); nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let entries) = self else { return nil }
        return entries.first { $0.0 == key }?.1
    }

    // ------------------------------------------------------------------ encoding

    /// Compact one-line JSON. NaN and ±Inf have no JSON form and encode as null.
    public func encoded() -> String {
        var out = ""
        encode(into: &out)
        return out
    }

    private func encode(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .number(let d): out += JSONValue.encodeNumber(d)
        case .string(let s): JSONValue.encodeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.encode(into: &out)
            }
            out += "]"
        case .object(let entries):
            out += "{"
            for (i, (key, value)) in entries.enumerated() {
                if i > 0 { out += "," }
                JSONValue.encodeString(key, into: &out)
                out += ":"
                value.encode(into: &out)
            }
            out += "}"
        }
    }

    /// Swift's `description` is the shortest text that reads back to the same Double, and for finite
    /// values it is already JSON's grammar: "2.0", "0.1", "1e-05", "1.5e+20", "-0.0".
    static func encodeNumber(_ d: Double) -> String {
        d.isFinite ? d.description : "null"
    }

    /// RFC 8259 escaping: quote, backslash and every control character below U+0020. U+2028 and
    /// U+2029 are escaped too (legal in JSON, but line breaks to JavaScript and some editors).
    static func encodeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    // ------------------------------------------------------------------ parsing

    /// Strict RFC 8259 parsing (no comments, trailing commas, NaN, leading zeros or raw control
    /// characters). Numbers without a fraction or exponent that fit an Int become `.integer`.
    /// Errors give the byte offset (from 0) in the UTF-8 text.
    public static func parse(_ text: String) throws -> JSONValue {
        var parser = JSONParser(bytes: Array(text.utf8))
        parser.skipSpace()
        let value = try parser.parseValue(depth: 0)
        parser.skipSpace()
        guard parser.pos == parser.bytes.count else { throw parser.fail("unexpected text after the JSON value") }
        return value
    }
}

extension JSONValue: Equatable {
    /// Structural equality; `.number(2)` and `.integer(2)` differ, object key order matters.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.integer(let x), .integer(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Keeps the literal's key order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
}

/// Recursive descent over UTF-8 bytes; nesting is bounded so hostile input cannot exhaust the stack.
private struct JSONParser {
    let bytes: [UInt8]
    var pos = 0
    static let maxDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ problem: String, at offset: Int? = nil) -> DBMError {
        DBMError("invalid JSON at byte offset \(offset ?? pos): \(problem)")
    }

    mutating func skipSpace() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x0A || bytes[pos] == 0x0D || bytes[pos] == 0x09 {
            pos += 1
        }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw fail("nested deeper than \(JSONParser.maxDepth) levels") }
        guard pos < bytes.count else { throw fail("expected a value, found the end of the text") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var entries: [(String, JSONValue)] = []
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(entries) }
            while true {
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
                pos += 1
                skipSpace()
                entries.append((key, try parseValue(depth: depth + 1)))
                skipSpace()
                guard pos < bytes.count else { throw fail("expected ',' or '}', found the end of the text") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(entries) }
                throw fail("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard pos < bytes.count else { throw fail("expected ',' or ']', found the end of the text") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw fail("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        default:
            throw fail("unexpected character '\(String(decoding: [bytes[pos]], as: UTF8.self))', expected a value")
        }
    }

    mutating func expectWord(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else {
            throw fail("expected '\(word)'")
        }
        pos += w.count
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = pos
        func digits() -> Int {
            let s = pos
            while pos < bytes.count, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") { pos += 1 }
            return pos - s
        }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        let intStart = pos
        let intDigits = digits()
        guard intDigits > 0 else { throw fail("expected a digit") }
        if intDigits > 1 && bytes[intStart] == UInt8(ascii: "0") { throw fail("leading zeros are not allowed", at: intStart) }
        var integral = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard digits() > 0 else { throw fail("expected a digit after the decimal point") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            integral = false
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard digits() > 0 else { throw fail("expected a digit in the exponent") }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if integral, let i = Int(text) { return .integer(i) }
        // Integers too large for an Int fall back to Double, as in most JSON readers.
        guard let d = Double(text), d.isFinite else { throw fail("number \(text) is out of the range of a double", at: start) }
        return .number(d)
    }

    /// Parses a string starting at the opening quote.
    mutating func parseString() throws -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw fail("raw control character 0x\(String(b, radix: 16)) in a string (must be escaped)") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            let escapeStart = pos
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated string") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if code >= 0xD800 && code < 0xDC00 {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate \\u\(String(code, radix: 16))", at: escapeStart)
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else {
                        throw fail("unpaired surrogate \\u\(String(code, radix: 16))", at: escapeStart)
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if code >= 0xDC00 && code < 0xE000 {
                    throw fail("unpaired surrogate \\u\(String(code, radix: 16))", at: escapeStart)
                }
                guard let scalar = UnicodeScalar(code) else { throw fail("invalid code point", at: escapeStart) }
                out += Array(String(Character(scalar)).utf8)
            default:
                throw fail("invalid escape '\\\(String(decoding: [e], as: UTF8.self))'", at: escapeStart)
            }
        }
        // The input came from a Swift String (valid UTF-8) and escapes add whole scalars: valid UTF-8.
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("expected 4 hex digits after \\u") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("expected 4 hex digits after \\u")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }
}

// ---------------------------------------------------------------------- JSON lines

/// Appends one JSON value per line to a file (metrics.jsonl, observables.jsonl). Each line is
/// written with one fputs and flushed at once, so a process killed mid-run leaves only complete
/// lines behind (and a reader can follow the file live).
public final class JSONLinesWriter {
    public let path: String
    private var file: UnsafeMutablePointer<FILE>?

    /// Opens path for appending (or truncates it when append is false), creating parent directories.
    public init(path: String, append: Bool = true) throws {
        self.path = path
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw DBMError("cannot create the directory '\(dir)' for '\(path)': \(error.localizedDescription)")
            }
        }
        // Through symbolic links, onto a regular file or a new name only: fopen would wait forever on
        // a FIFO and write into a device.
        _ = try writeDestination(path)
        // "e": close-on-exec, so child processes (plot helpers) do not inherit the descriptor.
        guard let f = fopen(path, append ? "ae" : "we") else {
            throw DBMError("cannot open '\(path)' for writing: \(String(cString: strerror(errno)))")
        }
        file = f
    }

    /// Writes the value as one line and flushes it.
    public func write(_ object: JSONValue) throws {
        guard let f = file else { throw DBMError("cannot write to '\(path)': the writer is closed") }
        let line = object.encoded() + "\n"
        if fputs(line, f) == EOF || fflush(f) != 0 {
            throw DBMError("cannot write to '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Closes the file; later writes throw. Safe to call more than once.
    /// Flushes the lines to disk (each line was already handed to the kernel as it was written) and closes.
    public func close() {
        if let f = file { fflush(f); fsync(fileno(f)); fclose(f); file = nil }
    }

    deinit { close() }
}
