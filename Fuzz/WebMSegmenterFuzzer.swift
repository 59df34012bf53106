import WebM

// libFuzzer target: the WebM segmenter on arbitrary bytes, cut into arbitrary chunks.
//
// Input: byte 0 chooses how the stream is cut (see `Chunking`), byte 1 seeds the cutting, the
// rest is the stream a publisher would send. Every run checks the segmenter's contract and stops
// the fuzzer (fatalError) when it breaks:
// - the init segment comes once, before any fragment;
// - the init segment's bytes, then every fragment's, are exactly the input, in order, up to what
//   the segmenter has consumed (`position`), after every chunk and after `finish()`;
// - what it holds (`bufferedByteCount`) stays within one element plus one pending Cluster start;
// - after an error it refuses further input with the same error;
// - cut into chunks or given whole, the stream gives the same error, or else the same outputs.
//
// Built and run by `make fuzz` (scripts/fuzz.sh).

/// Small limits, so the fuzzer reaches them with inputs of a few kilobytes.
let maxElementSize = 64 << 10
let maxPendingClusterStart = 16 << 10
/// An element header is at most a 4-byte ID and an 8-byte size.
let maxHeaderLength = 12

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let chunking = Chunking(mode: data[0], seed: data[1])
    let stream = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))

    let chunked = segment(stream, chunks: chunking.ranges(count: stream.count))
    let whole = segment(stream, chunks: [0..<stream.count])
    check(chunked.error == whole.error,
          "chunking \(chunking) changed the error: \(String(describing: chunked.error)) vs \(String(describing: whole.error)) whole")
    // On an error the whole stream's single append returns nothing, so only clean runs compare.
    check(chunked.error != nil || chunked.outputs == whole.outputs,
          "chunking \(chunking) changed the outputs: \(chunked.outputs.count) vs \(whole.outputs.count) whole")
    return 0
}

/// How the stream is cut. Low 4 bits of the mode: the chunk size (or the largest one); bit 7:
/// random sizes up to it instead of fixed ones; bit 6: an empty chunk after each chunk.
/// Chunks are never so small that there are more than `maxChunks` of them: a megabyte in single
/// bytes would take the fuzzer seconds per input, and chunk edges matter as much in a short input.
struct Chunking: CustomStringConvertible {
    static let sizes = [1, 2, 3, 4, 5, 7, 11, 16, 64, 100, 512, 1000, 4096, 16384, 65536, Int.max]
    static let maxChunks = 4096

    var limit: Int
    var random: Bool
    var emptyChunks: Bool
    var seed: UInt8

    init(mode: UInt8, seed: UInt8) {
        limit = Self.sizes[Int(mode & 0x0F)]
        random = mode & 0x80 != 0
        emptyChunks = mode & 0x40 != 0
        self.seed = seed
    }

    func ranges(count: Int) -> [Range<Int>] {
        var generator = SplitMix64(state: UInt64(seed))
        let smallest = count / Self.maxChunks + 1
        var ranges: [Range<Int>] = []
        var start = 0
        while start < count {
            let size = max(smallest, random && limit < Int.max ? Int.random(in: 1...limit, using: &generator) : limit)
            let end = count - start > size ? start + size : count
            ranges.append(start..<end)
            if emptyChunks { ranges.append(end..<end) }
            start = end
        }
        return ranges
    }

    var description: String {
        "\(random ? "random up to" : "fixed") \(limit == Int.max ? "whole" : "\(limit)")\(emptyChunks ? " with empty chunks" : "") seed \(seed)"
    }
}

/// What one segmenter made of the stream: its outputs in order, `finish()` included, and its error.
struct Run {
    var outputs: [WebMSegmenterOutput] = []
    var error: WebMError?
}

/// Feeds the chunks to a new segmenter, checking the contract after each one.
func segment(_ stream: [UInt8], chunks: [Range<Int>]) -> Run {
    var segmenter = WebMSegmenter(maxElementSize: maxElementSize, maxPendingClusterStart: maxPendingClusterStart)
    var run = Run()
    var emitted = 0  // bytes of the stream given back in outputs so far
    var sawInitSegment = false
    var appended = 0

    func take(_ outputs: [WebMSegmenterOutput]) {
        for output in outputs {
            let bytes: [UInt8]
            switch output {
            case .initSegment(let initSegment):
                check(emitted == 0 && run.outputs.isEmpty, "init segment after other output")
                sawInitSegment = true
                _ = initSegment.mimeType
                bytes = initSegment.bytes
            case .fragment(let fragment):
                check(sawInitSegment, "fragment before the init segment")
                check(!fragment.isKeyframe || fragment.startsCluster, "a keyframe fragment that does not start a Cluster")
                check(!fragment.bytes.isEmpty, "empty fragment")
                bytes = fragment.bytes
            }
            check(emitted + bytes.count <= appended && stream[emitted..<emitted + bytes.count].elementsEqual(bytes),
                  "output bytes at \(emitted) (\(bytes.count) bytes) are not the input's")
            emitted += bytes.count
            run.outputs.append(output)
        }
    }

    func checkAccounting(_ when: String) {
        let position = Int(segmenter.position)
        let held = segmenter.bufferedByteCount
        check(emitted <= position && position <= appended, "\(when): emitted \(emitted), position \(position), appended \(appended)")
        check(held <= maxHeaderLength + maxElementSize + maxPendingClusterStart,
              "\(when): holds \(held) bytes, more than one element and a pending Cluster start")
        if segmenter.initSegment != nil {
            // Everything appended is either given back or held (unread bytes, pending Cluster start).
            check(emitted + held == appended, "\(when): emitted \(emitted) + held \(held) != appended \(appended)")
        } else {
            check(emitted == 0, "\(when): output before the init segment")
        }
    }

    for chunk in chunks {
        appended += chunk.count
        do {
            take(try segmenter.append(stream[chunk]))
            checkAccounting("after \(appended) bytes")
        } catch {
            check(error.offset >= 0 && error.offset <= Int64(appended), "error offset \(error.offset) outside 0...\(appended)")
            check(!error.description.isEmpty, "error without a description")
            run.error = error
            break
        }
    }
    if let error = run.error {
        for again in [[], [0x1A]] as [[UInt8]] {
            do {
                _ = try segmenter.append(again)
                fatalError("accepted input after \(error)")
            } catch let repeated {
                check(repeated == error, "after \(error), a different error: \(repeated)")
            }
        }
        return run
    }
    take(segmenter.finish())
    checkAccounting("after finish")
    check(segmenter.finish().isEmpty, "finish() twice gave more output")
    return run
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("WebM segmenter contract broken: \(message())") }
}

/// A small deterministic generator (the same as the tests'), so one input always cuts one way.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
