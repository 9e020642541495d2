import Glibc
import LLMOSKernel

/// MCP's stdio transport: newline-delimited JSON-RPC messages on a pair of file
/// descriptors, one session for the life of the pipe.
///
/// `run` reads `input` until end of file, hands each line to a session, writes every
/// outgoing message as one line to `output`, and returns once the calls in flight have
/// finished and been answered (each is bounded by its driver's time limit). The
/// descriptors stay open and owned by the caller. Blocks the calling thread.
public enum MCPStdioTransport {
    public static func run(server: MCPServer, input: Int32, output: Int32) {
        let session = server.makeSession { text in
            var line = text
            line.append("\n")
            line.withUTF8 { writeAll(output, UnsafeRawBufferPointer($0)) }
        }
        let limit = server.options.maxMessageBytes
        var pending: [UInt8] = []
        var discarding = 0 // bytes of an oversized line skipped so far (0: not skipping)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            if count == 0 { break }
            var start = 0
            while start < count {
                guard let newline = chunk[start..<count].firstIndex(of: 0x0A) else {
                    if discarding > 0 {
                        discarding += count - start
                    } else {
                        pending.append(contentsOf: chunk[start..<count])
                        // Over the limit with no end in sight: stop buffering, skip to the newline.
                        if pending.count > limit {
                            discarding = pending.count
                            pending.removeAll(keepingCapacity: false)
                        }
                    }
                    break
                }
                if discarding > 0 {
                    session.refuseOversized(byteCount: discarding + (newline - start))
                    discarding = 0
                } else if pending.isEmpty {
                    deliver(chunk, start..<newline, limit: limit, to: session)
                } else {
                    pending.append(contentsOf: chunk[start..<newline])
                    deliver(pending, 0..<pending.count, limit: limit, to: session)
                    pending.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
        }
        // A last message without its newline still counts.
        if discarding == 0, !pending.isEmpty { deliver(pending, 0..<pending.count, limit: limit, to: session) }
        session.close()
    }

    /// One line (a trailing \r dropped, blank lines skipped).
    private static func deliver(_ bytes: [UInt8], _ range: Range<Int>, limit: Int, to session: MCPSession) {
        var end = range.upperBound
        if end > range.lowerBound, bytes[end - 1] == 0x0D { end -= 1 }
        let line = range.lowerBound..<end
        if line.count > limit {
            session.refuseOversized(byteCount: line.count)
            return
        }
        if bytes[line].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
        bytes.withUnsafeBytes { raw in session.receive(UnsafeRawBufferPointer(rebasing: raw[line])) }
    }

    /// Writes everything, across short writes and EINTR; a closed pipe drops the rest
    /// (the client is gone; end of input follows).
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
