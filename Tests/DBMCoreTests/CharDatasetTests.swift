import Foundation
import Testing
import DBMCore

/// The DBMError message of body, or nil when it succeeds.
private func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

/// The split's tokens, in the same order as the dataset's own.
private func tokens(_ ds: CharDataset, _ split: CharDataset.Split) -> [Int32] { Array(ds.tokens[ds.range(of: split)]) }

/// The nano-GPT corpus written by scripts/setup (DESIGN §7), when present.
private let corpusPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("data/shakespeare/input.txt").path

@Suite("CharDataset: character-level text for the nano-GPT")
struct CharDatasetTests {
    @Test("the vocabulary is the set of characters sorted by code point; decode(encode(s)) is s, also beyond ASCII")
    func vocabularyAndRoundTrip() throws {
        let text = "Größe ∑ naïve\nÉté 😀 zebra!\u{301}"
        let ds = try CharDataset(text: text)
        let expected = Array(Set(text.unicodeScalars)).sorted { $0.value < $1.value }
        #expect(ds.vocabulary == expected)
        #expect(ds.vocabSize == expected.count)
        #expect(ds.vocabularyString.unicodeScalars.elementsEqual(expected))
        #expect(ds.tokens.count == text.unicodeScalars.count)
        #expect(ds.tokens == (try ds.encode(text)))
        #expect(try ds.decode(ds.tokens) == text)
        // Tokens are 0-based indices into the vocabulary: "\n" is the smallest code point here, 😀 the largest.
        #expect(try ds.encode("\n😀") == [0, Int32(expected.count - 1)])
        #expect(try ds.encode("") == [])
        #expect(try ds.decode([]) == "")
        #expect(ds.token(of: "x") == nil && ds.token(of: "z") != nil)
        // One distinct character is a valid (if dull) vocabulary.
        let one = try CharDataset(text: "aaaaaaaaaa")
        #expect(one.vocabSize == 1 && one.tokens == [Int32](repeating: 0, count: 10))
    }

    @Test("a UTF-8 file reads as the same dataset as its text")
    func fileMatchesText() throws {
        let text = String(repeating: "To be, or not to be: that is the question. Ça va? ☃\n", count: 40)
        try withTempDir { dir in
            let path = dir + "/text.txt"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let a = try CharDataset(path: path), b = try CharDataset(text: text)
            #expect(a.vocabulary == b.vocabulary && a.tokens == b.tokens && a.trainCount == b.trainCount)
        }
    }

    @Test("the first int(n·trainFraction) characters train, the rest validate (nanoGPT's split)")
    func splitSizes() throws {
        let ds = try CharDataset(text: String(repeating: "abcdefghij", count: 100))
        #expect(ds.count(.train) == 900 && ds.count(.validation) == 100)
        #expect(ds.range(of: .train) == 0..<900 && ds.range(of: .validation) == 900..<1000)
        let odd = try CharDataset(text: "abcdefghijklmnopqrstuvwxy")   // 25 · 0.9 = 22.5
        #expect(odd.count(.train) == 22 && odd.count(.validation) == 3)
        let half = try CharDataset(text: "abcdefghij", trainFraction: 0.5)
        #expect(tokens(half, .train) == [0, 1, 2, 3, 4] && tokens(half, .validation) == [5, 6, 7, 8, 9])
        #expect(half.trainFraction == 0.5)
    }

    @Test("batches: y is x shifted by one character, and every window lies inside its split")
    func batchWindows() throws {
        // Random text over 20 letters: windows of 12 characters are (almost surely) unique, so each row
        // of x is found at exactly the offset it was taken from.
        let g = Generator(seed: 11)
        let letters = Array("abcdefghijklmnopqrst".unicodeScalars)
        var text = String.UnicodeScalarView()
        for _ in 0..<3000 { text.append(letters[g.below(letters.count)]) }
        let ds = try CharDataset(text: String(text))
        let (b, t) = (16, 12)
        for split in CharDataset.Split.allCases {
            let r = ds.range(of: split)
            let (x, y) = try ds.batch(split: split, batchSize: b, blockSize: t, generator: Generator(seed: 3))
            #expect(x.count == b * t && y.count == b * t)
            for row in 0..<b {
                let xs = Array(x[row * t ..< (row + 1) * t]), ys = Array(y[row * t ..< (row + 1) * t])
                #expect(Array(xs.dropFirst()) == Array(ys.dropLast()), "y is x shifted by one")
                let starts = (r.lowerBound ..< r.upperBound - t).filter { o in
                    Array(ds.tokens[o ..< o + t]) == xs && Array(ds.tokens[o + 1 ..< o + t + 1]) == ys
                }
                #expect(starts.count == 1, "row \(row) of the \(split) batch lies at one offset inside the split, found \(starts)")
            }
        }
    }

    @Test("the same generator seed gives the same batches; another seed, other ones")
    func batchReproducible() throws {
        let ds = try CharDataset(text: String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 50))
        let a = try ds.batch(split: .train, batchSize: 8, blockSize: 16, generator: Generator(seed: 42))
        let b = try ds.batch(split: .train, batchSize: 8, blockSize: 16, generator: Generator(seed: 42))
        let c = try ds.batch(split: .train, batchSize: 8, blockSize: 16, generator: Generator(seed: 43))
        #expect(a.x == b.x && a.y == b.y)
        #expect(a.x != c.x)
        // Successive draws of one generator continue the sequence: two batches of 4 are one batch of 8.
        let g = Generator(seed: 42)
        let first = try ds.batch(split: .train, batchSize: 4, blockSize: 16, generator: g)
        let second = try ds.batch(split: .train, batchSize: 4, blockSize: 16, generator: g)
        #expect(first.x + second.x == a.x)
    }

    @Test("offsets are uniform over 0 ..< n − T of each split: every one drawn, each about equally often")
    func offsetsCoverTheRange() throws {
        // Distinct characters: the token of a window's first character is its offset in the text.
        let ds = try CharDataset(text: "abcdefghijklmnopqrst", trainFraction: 0.5)   // train 0..<10, validation 10..<20
        let t = 4, draws = 6000
        for split in CharDataset.Split.allCases {
            let r = ds.range(of: split)
            let (x, _) = try ds.batch(split: split, batchSize: draws, blockSize: t, generator: Generator(seed: 7))
            var counts = [Int: Int]()
            for row in 0..<draws { counts[Int(x[row * t]), default: 0] += 1 }
            let offsets = Array(r.lowerBound ..< r.upperBound - t)   // 6 offsets; the last window's y ends at the split's end
            #expect(counts.keys.sorted() == offsets, "\(split): offsets drawn \(counts.keys.sorted()), expected \(offsets)")
            // Each count is Binomial(6000, 1/6): mean 1000, σ ≈ 29; 5σ bounds.
            for o in offsets {
                #expect(abs((counts[o] ?? 0) - 1000) < 145, "\(split): offset \(o) drawn \(counts[o] ?? 0) times in \(draws)")
            }
        }
    }

    @Test("bad input is an error saying what was expected: files, UTF-8, empty text and splits, sizes, characters, ids")
    func errors() throws {
        try withTempDir { dir in
            #expect(failure { try CharDataset(path: dir + "/missing.txt") }?.contains("does not exist") == true)
            #expect(failure { try CharDataset(path: dir) }?.contains("is not a regular file") == true)
            let bad = dir + "/bad.txt"
            #expect(FileManager.default.createFile(atPath: bad, contents: Data([0x61, 0x62, 0xFF, 0x63])))
            #expect(failure { try CharDataset(path: bad) }?.contains("expected UTF-8 text, got an invalid byte sequence at byte offset 2") == true)
            #expect(FileManager.default.createFile(atPath: bad, contents: Data([0x61, 0xC3])))          // truncated "é"
            #expect(failure { try CharDataset(path: bad) }?.contains("byte offset 1") == true)
            #expect(FileManager.default.createFile(atPath: bad, contents: Data([0xC0, 0xAF])))          // overlong "/"
            #expect(failure { try CharDataset(path: bad) }?.contains("byte offset 0") == true)
            #expect(FileManager.default.createFile(atPath: bad, contents: Data([0xED, 0xA0, 0x80])))    // a surrogate
            #expect(failure { try CharDataset(path: bad) }?.contains("invalid byte sequence") == true)
            let empty = dir + "/empty.txt"
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            #expect(failure { try CharDataset(path: empty) } == "expected a non-empty text, got an empty file '\(empty)'")
        }
        #expect(failure { try CharDataset(text: "") } == "expected a non-empty text, got an empty text")
        #expect(failure { try CharDataset(text: "a") }?.contains("leaves both splits non-empty") == true)   // int(0.9) = 0 train
        #expect(failure { try CharDataset(text: "abcdef", trainFraction: 0.1) }?.contains("(train 0, validation 6)") == true)
        for f in [0, 1, -0.5, 2, Double.nan] {
            #expect(failure { try CharDataset(text: "abcdef", trainFraction: f) }?.contains("expected a train fraction strictly between 0 and 1") == true)
        }

        let ds = try CharDataset(text: String(repeating: "abcdefghij", count: 250))   // train 2250, validation 250
        #expect(failure { try ds.encode("abcé") } == "character 'é' (U+00E9) at position 4 is not in the vocabulary of 10 characters")
        #expect(failure { try ds.encode("a\nb") }?.contains("character '\\n' (U+000A)") == true)
        #expect(failure { try ds.decode([0, 10]) } == "expected tokens in 0..<10 (the vocabulary size), got 10 at position 2")
        #expect(failure { try ds.decode([-1]) }?.contains("got -1 at position 1") == true)
        let g = Generator(seed: 1)
        #expect(failure { try ds.batch(split: .validation, batchSize: 2, blockSize: 300, generator: g) }
                == "block size 300 is larger than the validation split (250 characters) allows: expected at most 249")
        #expect(failure { try ds.batch(split: .validation, batchSize: 2, blockSize: 250, generator: g) }?.contains("expected at most 249") == true)
        #expect(failure { try ds.batch(split: .validation, batchSize: 2, blockSize: 249, generator: g) } == nil)
        #expect(failure { try ds.batch(split: .train, batchSize: 2, blockSize: 2250, generator: g) }?.contains("the train split (2250 characters)") == true)
        #expect(failure { try ds.batch(split: .train, batchSize: 0, blockSize: 8, generator: g) } == "expected a positive batch size, got 0")
        #expect(failure { try ds.batch(split: .train, batchSize: 4, blockSize: -8, generator: g) } == "expected a positive block size, got -8")
        #expect(failure { try ds.batch(split: .train, batchSize: Int.max, blockSize: 8, generator: g) } != nil)
    }

    @Test("the Shakespeare corpus of scripts/setup: 5,057,198 ASCII characters, 84 distinct, read and encoded in linear time (seconds at most)")
    func shakespeareCorpus() throws {
        guard FileManager.default.fileExists(atPath: corpusPath) else { return }   // scripts/setup writes it (CI runs setup first)
        let clock = ContinuousClock()
        let start = clock.now
        let ds = try CharDataset(path: corpusPath)
        let loaded = clock.now - start
        #expect(ds.tokens.count == 5_057_198)
        #expect(ds.vocabSize == 84 && ds.vocabulary.allSatisfy { $0.isASCII })
        #expect(ds.count(.train) == 4_551_478 && ds.count(.validation) == 505_720)   // int(5057198 · 0.9)
        #expect(ds.vocabulary.first == "\n" && ds.vocabulary[1] == " ")
        let text = try String(contentsOfFile: corpusPath, encoding: .utf8)
        let encodeStart = clock.now
        let encoded = try ds.encode(text)
        let encodeTime = clock.now - encodeStart
        #expect(encoded == ds.tokens)
        print("CharDataset: Shakespeare corpus loaded in \(loaded), encoded again in \(encodeTime)")
        // Not a speed target (scripts/bench has those; CI machines are shared): a bound that only a reading
        // or encoding that is no longer linear in the text (minutes for 5 MB) breaks, not a loaded machine.
        #expect(loaded < .seconds(10) && encodeTime < .seconds(10))
    }
}
