import Foundation
import Testing
import DBMCore

/// The DBMError message of parsing text, or nil when it parses.
fileprivate func parseError(_ text: String) -> String? {
    do { _ = try JSONValue.parse(text); return nil }
    catch let e as DBMError { return e.message }
    catch { Issue.record("unexpected error type: \(error)"); return nil }
}

@Suite("JSON") struct JSONTests {

    @Test func encodesSpecialValues() {
        #expect(JSONValue.number(.nan).encoded() == "null")
        #expect(JSONValue.number(.infinity).encoded() == "null")
        #expect(JSONValue.number(-.infinity).encoded() == "null")
        #expect(JSONValue.null.encoded() == "null")
        #expect(JSONValue.bool(true).encoded() == "true")
        #expect(JSONValue.bool(false).encoded() == "false")
        #expect(JSONValue.integer(42).encoded() == "42")
        #expect(JSONValue.integer(Int.min).encoded() == "-9223372036854775808")
        #expect(JSONValue.number(2).encoded() == "2.0")
        #expect(JSONValue.number(-0.0).encoded() == "-0.0")
        #expect(JSONValue.number(0.1).encoded() == "0.1")
        #expect(JSONValue.number(1e-05).encoded() == "1e-05")
        #expect(JSONValue.number(1.5e20).encoded() == "1.5e+20")
        #expect(JSONValue.number(.leastNonzeroMagnitude).encoded() == "5e-324")
        #expect(JSONValue.array([.number(.nan), .integer(1), .number(1)]).encoded() == "[null,1,1.0]")
        #expect(JSONValue.array([]).encoded() == "[]")
        #expect(JSONValue.object([]).encoded() == "{}")
    }

    @Test func escapesStrings() {
        #expect(JSONValue.string("a\"b\\c/d").encoded() == #""a\"b\\c/d""#)
        #expect(JSONValue.string("\n\r\t\u{08}\u{0C}").encoded() == #""\n\r\t\b\f""#)
        #expect(JSONValue.string("\u{0}\u{1}\u{1F}\u{7F}").encoded() == "\"\\u0000\\u0001\\u001f\u{7F}\"")
        #expect(JSONValue.string("é😀\u{2028}").encoded() == "\"é😀\\u2028\"")
        // Every control character is escaped, so an encoded line never holds a raw one.
        let controls = String(String.UnicodeScalarView((0..<0x20).map { UnicodeScalar(UInt8($0)) }))
        #expect(!JSONValue.string(controls).encoded().unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test func keepsKeyOrder() throws {
        let v: JSONValue = ["step": 3, "time": 0.5, "zeta": "z", "alpha": [1, 2.5, nil, true]]
        let text = v.encoded()
        #expect(text == #"{"step":3,"time":0.5,"zeta":"z","alpha":[1,2.5,null,true]}"#)
        let back = try JSONValue.parse(text)
        #expect(back == v)
        guard case .object(let entries) = back else { Issue.record("not an object"); return }
        #expect(entries.map(\.0) == ["step", "time", "zeta", "alpha"])
        #expect(back["time"] == .number(0.5))
        #expect(back["missing"] == nil)
    }

    @Test func parseOfEncodeRoundTrips() throws {
        let fixed: [JSONValue] = [
            .null, true, 0, -0.0, 1e300, -1e-300, .integer(Int.max), .integer(Int.min), "", "\u{0}quote\"back\\",
            ["nested": [["a": [[], [:], [nil]]]], "k": "v"],
            .object([("dup", 1), ("dup", 2)]),  // parsed objects keep repeated keys too
        ]
        for v in fixed { #expect(try JSONValue.parse(v.encoded()) == v, "\(v.encoded())") }

        // Random doubles from random bit patterns: shortest form must read back to the same bits.
        let g = Generator(seed: 99)
        var doubles = 0
        while doubles < 20000 {
            let d = Double(bitPattern: g.nextUInt64())
            guard d.isFinite else { continue }
            guard case .number(let back) = try JSONValue.parse(JSONValue.number(d).encoded()) else {
                Issue.record("\(d) did not parse back as a number"); break
            }
            #expect(back.bitPattern == d.bitPattern, "\(d)")
            doubles += 1
        }
        // Random strings over all of Unicode (except surrogates, which Swift strings cannot hold).
        for _ in 0..<2000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<g.below(20) {
                let pick = g.below(4)
                let code = pick == 0 ? UInt32(g.below(0x80)) : pick == 1 ? UInt32(g.below(0x20)) : UInt32(g.below(0x110000))
                if let u = UnicodeScalar(code) { s.append(u) }
            }
            let v = JSONValue.string(String(s))
            #expect(try JSONValue.parse(v.encoded()) == v)
        }
    }

    @Test func parsesValidJSON() throws {
        #expect(try JSONValue.parse(" \t\r\n[1 , -0, 2.50, 1E3, -1e-2, 12345678901234567890]\n")
            == [1, 0, 2.5, 1000.0, -0.01, .number(12345678901234567168)])
        #expect(try JSONValue.parse(#""\u00e9\uD83D\uDE00\/\b\f\n\r\t\"\\""#) == .string("é😀/\u{08}\u{0C}\n\r\t\"\\"))
        #expect(try JSONValue.parse("{}") == [:])
        #expect(try JSONValue.parse("{\"a\":{\"b\":[]}}") == ["a": ["b": []]])
        #expect(try JSONValue.parse("\"é😀\"") == "é😀")
        // Nesting up to the limit works; beyond it is an error, not a stack overflow.
        #expect(try JSONValue.parse(String(repeating: "[", count: 500) + String(repeating: "]", count: 500)) != nil)
        #expect(parseError(String(repeating: "[", count: 100000))?.contains("nested deeper") == true)
    }

    @Test func rejectsMalformedJSONWithOffsets() {
        // (text, byte offset the message must give)
        let cases: [(String, Int)] = [
            ("", 0), ("   ", 3), ("nul", 0), ("tru", 0), ("[1,]", 3), ("[1 2]", 3), ("{\"a\" 1}", 5),
            ("{\"a\":1,}", 7), ("{a:1}", 1), ("01", 0), ("-", 1), ("1.", 2), ("1e", 2), ("1e+", 3), (".5", 0),
            ("+1", 0), ("NaN", 0), ("Infinity", 0), ("1e400", 0), ("\"abc", 4), ("\"a\nb\"", 2),
            ("\"\\x\"", 1), ("\"\\u12\"", 3), ("\"\\uD800\"", 1), ("\"\\uDC00x\"", 1), ("\"\\uD800\\u0041\"", 1),
            ("[1] [2]", 4), ("{\"a\":1}}", 7), ("[1,2", 4), ("// comment\n1", 0), ("'single'", 0), ("[\"é\" x]", 6),
        ]
        for (text, offset) in cases {
            guard let message = parseError(text) else { Issue.record("\(text.debugDescription) should not parse"); continue }
            #expect(message.contains("invalid JSON at byte offset \(offset):"), "\(text.debugDescription): \(message)")
        }
    }

    // ------------------------------------------------------------------ python interop

    @Test func pythonReadsWhatWeWrite() throws {
        try withTempDir { dir in
            let path = "\(dir)/deep/er/metrics.jsonl"   // parents do not exist yet
            let writer = try JSONLinesWriter(path: path)
            let g = Generator(seed: 5)
            var lines = 0
            let specials: [Double] = [.nan, .infinity, -.infinity, -0.0, 0, 1e-05, 1e-7, 1e16, 123456.789, .leastNonzeroMagnitude,
                                      .greatestFiniteMagnitude, 2, 0.1 + 0.2]
            for i in 0..<600 {
                let x = i < specials.count ? specials[i] : (g.uniform() - 0.5) * pow(10, Double(g.below(40)) - 20)
                var s = String.UnicodeScalarView()
                for _ in 0..<g.below(12) {
                    if let u = UnicodeScalar(UInt32(g.below(3) == 0 ? g.below(0x40) : g.below(0x110000))) { s.append(u) }
                }
                let str = String(s)
                let hex = x.isFinite ? String(format: "%a", x) : "none"
                try writer.write(["step": .integer(i), "x": .number(x), "hex": .string(hex), "s": .string(str),
                                  "codes": .array(str.unicodeScalars.map { .integer(Int($0.value)) }),
                                  "nested": ["ok": true, "list": [nil, 1, "two"]]])
                lines += 1
            }
            writer.close()
            let script = #"""
import sys, json
def no_constants(name): raise ValueError('non-standard constant ' + name)
bad = 0; n = 0
with open(sys.argv[1], encoding='utf-8') as f:
    for line in f:
        assert line.endswith('\n')
        o = json.loads(line, parse_constant=no_constants)
        problems = []
        if list(o.keys()) != ['step', 'x', 'hex', 's', 'codes', 'nested']: problems.append('key order')
        if o['step'] != n or type(o['step']) is not int: problems.append('step')
        if o['hex'] == 'none':
            if o['x'] is not None: problems.append('non-finite not null')
        elif type(o['x']) is not float or o['x'].hex() != float.fromhex(o['hex']).hex(): problems.append(f"x {o['x']!r} vs {o['hex']}")
        if [ord(c) for c in o['s']] != o['codes']: problems.append('string')
        if o['nested'] != {'ok': True, 'list': [None, 1, 'two']}: problems.append('nested')
        if problems: bad += 1; print('FAIL line', n, problems)
        n += 1
print('LINES', n)
print('VERDICT', 'OK' if bad == 0 else 'FAIL')
"""#
            let (status, output) = try runPython(script, [path])
            #expect(status == 0)
            #expect(output.contains("LINES \(lines)\n"), "\(output)")
            #expect(output.contains("VERDICT OK"), "\(output)")
        }
    }

    @Test func weReadWhatPythonWrites() throws {
        let script = #"""
import sys, json
docs = [
    {'a': 1, 'b': [1.5, -2e-308, 1e308, True, False, None], 'c': {'z': 'é😀\u2028\x00\x1f"\\'}},
    [0.1, 0.30000000000000004, 12345678901234567, -0.0, 5e-324],
    '\U0001F600 plain \u00e9',
    {'': {'': []}, 'order': {'q': 1, 'a': 2, 'm': 3}},
]
with open(sys.argv[1] + '/in.jsonl', 'w') as f:
    for d in docs:
        f.write(json.dumps(d, ensure_ascii=True) + '\n')
        f.write(json.dumps(d, ensure_ascii=False, indent=2).replace('\n', ' ') + '\n')
if len(sys.argv) > 2:
    with open(sys.argv[1] + '/out.jsonl') as f:
        back = [json.loads(l) for l in f]
    expected = [d for d in docs for _ in range(2)]
    ok = back == expected and all(json.dumps(a) == json.dumps(b) for a, b in zip(back, expected))
    print('VERDICT', 'OK' if ok else 'FAIL', len(back))
"""#
        try withTempDir { dir in
            let first = try runPython(script, [dir])
            try #require(first.status == 0, "\(first.output)")
            let input = try String(contentsOfFile: "\(dir)/in.jsonl", encoding: .utf8)
            let writer = try JSONLinesWriter(path: "\(dir)/out.jsonl", append: false)
            for line in input.split(separator: "\n") { try writer.write(try JSONValue.parse(String(line))) }
            writer.close()
            let second = try runPython(script, [dir, "check"])
            #expect(second.output.contains("VERDICT OK 8"), "\(second.output)")
        }
    }

    // ------------------------------------------------------------------ the writer itself

    @Test func linesWriterAppendsTruncatesAndCloses() throws {
        try withTempDir { dir in
            let path = "\(dir)/a/b.jsonl"
            do {
                let w = try JSONLinesWriter(path: path)
                try w.write(["n": 1])
                // Flushed at once: visible before close.
                #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"n\":1}\n")
            }  // deinit closes
            let w2 = try JSONLinesWriter(path: path)  // append
            try w2.write(["n": 2])
            w2.close()
            w2.close()  // harmless
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"n\":1}\n{\"n\":2}\n")
            do {
                try w2.write(["n": 3])
                Issue.record("writing after close should fail")
            } catch let e as DBMError {
                #expect(e.message.contains("closed"))
            }
            let w3 = try JSONLinesWriter(path: path, append: false)  // truncates
            try w3.write("only")
            w3.close()
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "\"only\"\n")

            // A path whose parent is a file cannot be created.
            do {
                _ = try JSONLinesWriter(path: "\(path)/x.jsonl")
                Issue.record("opening under a file should fail")
            } catch let e as DBMError {
                #expect(e.message.contains(path))
            }
        }
    }
}
