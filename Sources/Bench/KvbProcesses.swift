import Foundation

/// A `kvb-server` process the load run started (a broker or a relay).
final class KvbProcess: @unchecked Sendable {
    let process: Process
    let name: String

    var pid: Int32 { process.processIdentifier }

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:], log: URL, stdout: Pipe? = nil) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        process.standardError = logHandle
        process.standardOutput = stdout ?? logHandle
        process.standardInput = Pipe()
        do {
            try process.run()
        } catch {
            throw BenchError("cannot start \(executable): \(error)")
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A broker and relays started for one load run, each relay on its own port.
struct KvbCluster: Sendable {
    let broker: KvbProcess
    let bootstrap: String
    let relays: [KvbProcess]
    let relayPorts: [Int]

    /// Starts `kvb-server broker`, then `relays` relays on it, and waits until each answers `/healthz`.
    static func start(server: String, relays count: Int, relayArguments: [String], logs: URL) throws -> KvbCluster {
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let out = Pipe()
        let broker = try KvbProcess(name: "broker", executable: server, arguments: ["broker", "--log-level", "warning"],
                                    log: logs.appendingPathComponent("broker.log"), stdout: out)
        guard let bootstrap = Self.readBootstrap(from: out.fileHandleForReading) else {
            broker.stop()
            throw BenchError("the broker did not print its bootstrap address (see \(logs.path)/broker.log)")
        }
        var relays: [KvbProcess] = []
        var ports: [Int] = []
        do {
            for index in 0..<count {
                let port = try freePort()
                let relay = try KvbProcess(
                    name: "relay\(index + 1)", executable: server,
                    arguments: ["--host", "127.0.0.1", "--port", String(port), "--relay-id", "bench-relay-\(index + 1)"] + relayArguments,
                    environment: ["BOOTSTRAP_SERVERS": bootstrap, "LOG_LEVEL": "warning"],
                    log: logs.appendingPathComponent("relay\(index + 1).log"))
                relays.append(relay)
                ports.append(port)
            }
            for (relay, port) in zip(relays, ports) {
                let deadline = ContinuousClock.now + .seconds(30)
                while httpStatus(port: port, path: "/healthz") != 200 {
                    guard relay.process.isRunning, ContinuousClock.now < deadline else {
                        throw BenchError("\(relay.name) did not become healthy on port \(port) (see \(logs.path)/\(relay.name).log)")
                    }
                    usleep(100_000)
                }
            }
        } catch {
            relays.forEach { $0.stop() }
            broker.stop()
            throw error
        }
        return KvbCluster(broker: broker, bootstrap: bootstrap, relays: relays, relayPorts: ports)
    }

    func stop() {
        relays.forEach { $0.stop() }
        broker.stop()
    }

    private static func readBootstrap(from handle: FileHandle) -> String? {
        var text = ""
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let data = handle.availableData
            if data.isEmpty { return nil }
            text += String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n") where line.hasPrefix("bootstrap=") {
                return String(line.dropFirst("bootstrap=".count))
            }
        }
        return nil
    }
}

/// A TCP port free on loopback right now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw BenchError("cannot bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The status code of `GET path` on a loopback port; nil if nothing answers.
func httpStatus(port: Int, path: String) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard write(fd, request, request.count) == request.count else { return nil }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = read(fd, &buffer, buffer.count)
    guard count > 12 else { return nil }
    let line = String(decoding: buffer[0..<count], as: UTF8.self)
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}
