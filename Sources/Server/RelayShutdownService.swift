import Dispatch
import Kafka
import Logging
import Relay
import ServiceLifecycle

/// Shuts the relay down in order on SIGINT/SIGTERM: refuse new connections, close every socket
/// with 1001, let publishers' last fragments and end markers go out, flush the producer. It is
/// the last service in the group, so this all happens before the HTTP server stops.
struct RelayShutdownService: Service {
    let relay: Relay
    let connections: ConnectionRegistry
    let agent: Locked<ControlPlaneAgent?>
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing \(connections.count) connections")
        relay.beginShutdown()
        await connections.closeAll(timeout: .seconds(5))
        if let agent = agent.withLock({ $0 }) {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    agent.stop()
                    continuation.resume()
                }
            }
        }
        await relay.shutdown()
        logger.info("Kafka producer flushed")
    }
}
